from speedrun_operator.cli import main

main()
