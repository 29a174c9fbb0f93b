import ArgumentParser
import FoundationEssentials
import OCI
import Store
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

struct ImportCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import a tar file as an image or container",
        discussion: """
            import [--mv] [--platform=os/arch] <tar-file|URL|-> <repo/image:tag>
            import --tocontainer [--name=<name>] <tar-file|URL|-> [<repo/image:tag>]
            import --clone [--name=<name>] <tar-file|URL|->
            A root-filesystem tar (plain, gzip or zstd) becomes a one-layer image in udocker's v1
            layout, or with --tocontainer a container; --clone restores an `export --clone` tarball.
            The tar is checked completely before anything is added to the repository.
            """)
    @Flag(name: .customLong("mv"), help: "move the tar file into the repository instead of copying it") var move = false
    @Flag(name: .customLong("tocontainer"), help: "create a container instead of an image") var toContainer = false
    @Flag(name: .customLong("clone"), help: "import a container exported with export --clone") var clone = false
    @Option(name: .customLong("name"), help: "container name (with --tocontainer or --clone)") var name: String?
    @Option(name: .customLong("platform"), help: "os/arch[/variant] recorded in the image metadata") var platform: String?
    @Argument(help: "tar file, URL or -, then repo/image:tag") var args: [String] = []

    func execute(_ context: CommandContext) async throws -> Int32 {
        guard let file = args.first else { throw CommandFailure("must specify tar filename") }
        let spec = args.count > 1 ? args[1] : nil
        guard args.count <= 2 else { throw CommandFailure("import: too many arguments: \(args.dropFirst(2).joined(separator: " "))") }
        let plat = try ImagePuller.platform(platform)
        let repo = context.repository
        var source: LocalRepository.TarSource =
            TransferFiles.isStdio(file)
            ? .descriptor(try TransferFiles.openInput(file, noInput: "import: no input: give a tar file or redirect stdin")) : .file(file)
        var downloaded: String?
        defer { if let d = downloaded { unlink(d) } }
        if file.hasPrefix("http://") || file.hasPrefix("https://") {
            downloaded = try await URLDownload.fetch(file, context: context)
            source = .file(downloaded!)
        }
        if clone || toContainer {
            if clone && toContainer { throw CommandFailure("import: --clone and --tocontainer exclude each other") }
            let id: String
            if clone {
                id = try repo.importClone(from: source, name: name, warn: context.messages.warning)
            } else {
                if let spec { _ = try LocalImageName(parsing: spec) }
                id = try repo.importContainer(from: source, image: spec, name: name, platform: plat, warn: context.messages.warning)
            }
            print(id)
            return 0
        }
        guard let spec else { throw CommandFailure("must specify the image name: import <tar-file> <repo/image:tag>") }
        if name != nil { throw CommandFailure("import: --name needs --tocontainer or --clone") }
        let image = try LocalImageName(parsing: spec)
        let layer = try repo.importImage(from: source, as: image, move: move && downloaded == nil, platform: plat)
        context.messages.info("added layer: \(layer)")
        return 0
    }
}
