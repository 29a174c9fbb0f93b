import ArgumentParser
import FoundationEssentials
import Store
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

struct LoadCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "load", abstract: "Load images from a docker-archive or OCI archive",
        discussion: """
            load -i <file> [<repo/image[:tag]>]      load [-] [<repo/image[:tag]>]   (stdin)
            Reads docker-save archives (classic and Docker >= 25), podman/skopeo docker-archive,
            OCI image layouts (oci-archive, umoci), plain or compressed. Every blob is checked
            against its digest; nothing is added unless the whole archive is sound. Prints the
            loaded repo:tag names. A name argument replaces the repository name.
            """)
    @Option(name: [.customShort("i"), .customLong("input")], help: "archive file ('-' for stdin)") var input: String?
    @Argument(help: "[-] [repo/image]") var args: [String] = []

    func execute(_ context: CommandContext) async throws -> Int32 {
        var rest = args
        var file = input ?? "-"
        if let first = rest.first, TransferFiles.isStdio(first) { rest.removeFirst(); file = first }
        guard rest.count <= 1 else { throw CommandFailure("load: too many arguments") }
        if let n = rest.first { _ = try LocalImageName(parsing: n) }
        let fd = try TransferFiles.openInput(file, noInput: "load: no input: use -i <file> or redirect stdin")
        defer { if fd != 0 { close(fd) } }
        let images = try context.repository.loadImages(
            from: fd, sourceName: TransferFiles.shown(file),
            nameOverride: rest.first, info: { context.messages.progress(.step($0)) })
        for i in images { print(i.description) }
        return 0
    }
}
