from tomyum.cli.app import main

main()
