import ArgumentParser
import Store

struct InspectCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Print image or container metadata",
        discussion: "inspect [-p] <container-id|name|repo/image:tag>")
    @Flag(name: .customShort("p"), help: "print the container ROOT path on the host") var printPath = false
    @Argument(help: "container or image") var target: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        let repo = context.repository
        if let id = repo.containerID(target) {
            if printPath { print(repo.containerRoot(id)); return 0 }
            let bytes = try repo.containerConfigChecked(id).bytes
            print(JSONOutput.pretty(bytes))
            return 0
        }
        if printPath { throw CommandFailure("container not found: \(target)") }
        let img = try LocalImageName(parsing: target)
        guard repo.imageExists(img) else { throw CommandFailure("image or container not found: \(target)") }
        print(JSONOutput.pretty(try repo.imageContents(img).configBytes))
        return 0
    }
}
