import FerryCore
import Glibc
// Entry point; the command line is parsed in FerryCore so tests can drive it.
exit(FerryCommand.run(CommandLine.arguments))
