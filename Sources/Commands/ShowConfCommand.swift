import ArgumentParser

struct ShowConfCommand: UDockerCommand {
    static let configuration = CommandConfiguration(commandName: "showconf", abstract: "Print all configuration options")
    static var needsRepository: Bool { false }

    func execute(_ context: CommandContext) async throws -> Int32 {
        let c = context.configuration
        print(String(repeating: "-", count: 80))
        print("\t\tConfiguration options")
        for key in c.order { print("\(key) = \(c[key])") }
        print(String(repeating: "-", count: 80))
        return 0
    }
}
