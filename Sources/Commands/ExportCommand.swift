import ArgumentParser
import FoundationEssentials
import Store
import UDockerSystem

struct ExportCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export a container to a tar file",
        discussion: """
            export -o <tar-file> [--clone] <container-id|name>
            export [--clone] - <container-id|name>      (to stdout)
            Without --clone the tar holds the container's root filesystem (as `docker export`);
            with --clone it holds the whole container, metadata and execution mode included, for
            `import --clone`. An existing output file is replaced once the new archive is complete.
            """)
    @Option(name: .customShort("o"), help: "output file ('-' for stdout)") var output: String?
    @Flag(name: .customLong("clone"), help: "export the whole container in udocker's clone format") var clone = false
    @Argument(help: "[-] container") var args: [String] = []

    func execute(_ context: CommandContext) async throws -> Int32 {
        var rest = args
        var out = output
        if rest.first == "-" { rest.removeFirst(); out = "-" }
        guard rest.count == 1, let container = rest.first else { throw CommandFailure("export: expected one container id or name") }
        let id = try context.containerID(container)
        if !TransferFiles.isStdio(out) { context.messages.info("exporting to file: \(out!)") }
        var warnings: [String] = []
        try TransferFiles.writeOutput(out, what: "a tar archive", replace: true) { fd in
            warnings = try context.withMergedRoot(of: id) {
                try context.repository.exportContainer(id, to: fd, clone: clone, mergedRoot: $0)
            }
        }
        for w in warnings { context.messages.warning(w) }
        return 0
    }
}
