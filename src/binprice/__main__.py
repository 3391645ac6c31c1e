from binprice.cli import main

main()
