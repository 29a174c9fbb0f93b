import ContainerModel
import ArgumentParser
import Engines
import Store
import UDockerSystem

struct SetupCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup", abstract: "Show or change the execution mode of a container",
        discussion: """
            setup [--execmode=<mode>] [--force] [--purge] [--fixperm] [--nvidia] <container-id|name>
            Without options it prints the current mode. Modes:
            \(ExecutionMode.helpTable)
            --nvidia copies the host NVIDIA driver into the container (udocker's way; --force replaces
            an earlier copy); `run --nvidia` binds the current driver at run time instead.
            """)
    @Option(name: .customLong("execmode"), help: ArgumentHelp("one of \(ExecutionMode.names)")) var execmode: ExecutionMode?
    @Flag(name: .customLong("force"), help: "convert even if already in the mode") var force = false
    @Flag(name: .customLong("purge"), help: "remove mount points and file-bind copies left by execution modes") var purge = false
    @Flag(name: .customLong("fixperm"), help: "give the owner read/write (and search on directories) on every file of ROOT") var fixperm =
        false
    @Flag(name: .customLong("nvidia"), help: "copy the host NVIDIA driver into the container") var nvidia = false
    @Argument(help: "container") var container: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        let repo = context.repository
        let id = try context.containerID(container)
        let resolver = ModeResolver(context: context)
        if nvidia {
            guard !repo.isContainerProtected(id) else { throw CommandFailure("container is protected: \(container)") }
            guard let lock = try repo.containerLock(id, .exclusive, wait: false) else {
                throw CommandFailure("container is in use: \(container)")
            }
            defer { lock.unlock() }
            do {
                let written = try NVIDIASetup.install(
                    containerDirectory: repo.containerDirectory(id), root: repo.containerRoot(id),
                    environment: context.environment, udockerDir: repo.topDirectory, force: force)
                context.messages.info("nvidia driver copied into the container: \(written.count) file(s)")
            } catch let e as NVIDIASetup.Failure {
                throw CommandFailure("setup --nvidia: \(e.description)")
            }
            if execmode == nil { return 0 }
        }
        if purge || fixperm {
            // Both change files the running container uses: refuse while it runs.
            guard let lock = try repo.containerLock(id, .exclusive, wait: false) else {
                throw CommandFailure("container is in use: \(container)")
            }
            defer { lock.unlock() }
            if purge {
                for line in try repo.purgeContainer(id) { context.messages.info(line) }
            }
            if fixperm {
                let (changed, failed) = try repo.fixPermissions(id)
                context.messages.info("fixed permissions of \(changed) file(s)")
                if !failed.isEmpty {
                    context.messages.warning("could not change \(failed.count) file(s) not owned by you, e.g. \(failed[0])")
                }
            }
            if execmode == nil { return 0 }
        }
        guard let mode = execmode else {  // --execmode "" = not given, as in udocker (dropped by normalize)
            print("execmode: \(try resolver.mode(of: id).rawValue)")
            print("nvidiamode: \(NVIDIASetup.isInstalled(containerDirectory: repo.containerDirectory(id)) ? "True" : "False")")
            return 0
        }
        guard !repo.isContainerProtected(id) else { throw CommandFailure("container is protected: \(container)") }
        _ = try EngineSelector.engine(for: mode, environment: resolver.engineEnvironment())
        guard let lock = try repo.containerLock(id, .exclusive, wait: false) else {
            throw CommandFailure("container is in use: \(container)")
        }
        defer { lock.unlock() }
        // An overlay container becomes flat (lowers + upper merged into ROOT) for any other engine.
        if !EngineRegistry.standard.capabilities(of: mode).contains(.overlayRoot), repo.isOverlayContainer(id) {
            context.messages.info("materialising the overlay container into a flat ROOT")
            do {
                let root = repo.containerRoot(id)
                try repo.flattenOverlay(id) { layout, into in try OverlayView.copyMergedTree(layout, root: root, into: into) }
            } catch {
                throw CommandFailure("setup --execmode=\(mode.rawValue): cannot make the overlay container flat: \(error)", cause: error)
            }
        }
        // Fakechroot conversions (links, loader, ELF headers) and their undoing; journaled, so an
        // interrupted one is finished here or by the next Fakechroot run.
        do {
            try FakechrootSetup.convert(
                directory: repo.containerDirectory(id), root: repo.containerRoot(id), to: mode,
                force: force, log: { context.messages.info($0) },
                setMode: { try repo.setExecutionMode(id, $0) })
        } catch let e as FakechrootSetup.Failure {
            throw CommandFailure("setup --execmode=\(mode.rawValue) failed: \(e.description)")
        }
        return 0
    }
}
