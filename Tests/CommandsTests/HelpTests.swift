@testable import Commands
import Engines
import Testing

/// The help texts are generated from the definitions: every command, every execution mode.
@Suite struct HelpTests {
    @Test func generalHelpListsEveryCommand() {
        let text = HelpCommand.text
        for name in UDocker.commands.keys {
            #expect(text.contains("\n  \(name) ") || text.contains("|\(name)]"), "general help does not list \(name)")
        }
        #expect(!text.contains("@MORE@") && !text.contains("@MODES@"))
    }

    @Test func everyCommandHasItsOwnHelp() {
        for (name, type) in UDocker.commands {
            let help = type.helpMessage()
            #expect(help.contains("USAGE: \(name)"), "\(name) --help:\n\(help)")
            #expect(!type.configuration.abstract.isEmpty, "\(name) has no abstract")
        }
    }

    @Test func helpTextsListEveryExecutionMode() {
        #expect(Set(ExecutionMode.listed) == Set(ExecutionMode.allCases))
        let setup = SetupCommand.helpMessage(columns: 200)
        for mode in ExecutionMode.allCases {
            #expect(HelpCommand.text.contains("  \(mode.rawValue)  \(mode.helpDescription)"), "general help lacks \(mode)")
            #expect(setup.contains("\(mode.rawValue)  \(mode.helpDescription)"), "setup --help lacks \(mode):\n\(setup)")
            #expect(ExecutionMode.names.contains(mode.rawValue))
        }
    }
}
