import ArgumentParser
import FoundationEssentials
import Store
import UDockerSystem

struct SaveCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "save", abstract: "Save images to a docker-archive",
        discussion: """
            save -o <file> <repo/image:tag>...       save [-] <repo/image:tag>...   (stdout)
            Writes the classic `docker save` layout, readable by docker/podman load, skopeo
            (docker-archive:) and the Python udocker. An existing output file is never overwritten.
            """)
    @Option(name: [.customShort("o"), .customLong("output")], help: "output file ('-' for stdout)") var output: String?
    @Argument(help: "repo/image:tag...") var args: [String] = []

    func execute(_ context: CommandContext) async throws -> Int32 {
        var rest = args
        var out = output
        if rest.first == "-" { rest.removeFirst(); out = "-" }
        guard !rest.isEmpty else { throw CommandFailure("save: must specify at least one image") }
        var images: [LocalImageName] = []
        for spec in rest {
            let img = try LocalImageName(parsing: spec)
            guard context.repository.imageExists(img) else { throw CommandFailure("image not found: \(img)") }
            if !images.contains(img) { images.append(img) }
        }
        try TransferFiles.writeOutput(out, what: "an image archive") { fd in
            try context.repository.saveImages(images, to: fd, info: { context.messages.progress(.step($0)) })
        }
        return 0
    }
}
