from imovsp.cli import main

main()
