from fakemeta.server import main

main()
