from beamline.cli import main

main()
