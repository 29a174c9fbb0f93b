import Commands
import Foundation

let status = await UDocker.main(Array(CommandLine.arguments.dropFirst()))
exit(status)
