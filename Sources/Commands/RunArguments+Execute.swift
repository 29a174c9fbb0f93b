import ContainerModel
import Engines
import FoundationEssentials
import OCI
import Store
import UDockerSystem

/// `udocker run`: an existing container, or an image pulled and created on the fly, or a bare
/// tree (`--location`), run by the container's engine.
extension RunArguments: CommandAction {
    func execute(_ context: CommandContext) async throws -> Int32 {
        let repo = context.repository
        let location = location.flatMap { $0.isEmpty ? nil : $0 }
        if location == nil && target.isEmpty { throw CommandFailure("must specify container_id or image:tag") }
        if !publish.isEmpty || publishAll { context.messages.warning("port mapping is not supported by this engine; ignored") }
        if !volumesFrom.isEmpty || !dns.isEmpty || !dnsSearch.isEmpty {
            context.messages.warning(
                "--volumes-from, --dns and --dns-search are ignored (as by udocker): the host network and files are used")
        }
        let pullPolicy = pull

        // --location: udocker still takes the first argument as the container and ignores it.
        let id = location == nil ? try await containerToRun(context, pullPolicy: pullPolicy) : ""
        // The container as the repository records it, every file checked, in one read (its
        // `execmode` first: an invalid one is the first error, as before).
        let record = location == nil ? try repo.runnable(id) : nil
        let resolver = ModeResolver(context: context)
        // A container with no mode of its own runs N1 without probing first (the probe costs a
        // fork on every run); if user namespaces turn out to be unavailable, it falls back to the
        // next engine that works (EngineSelector.automaticOrder).
        let chosen =
            location == nil
            ? try resolver.explicitMode(recorded: record?.mode, of: id)
            : ExecutionMode(parsing: context.configuration["override_default_execution_mode"])
        let mode = chosen ?? EngineSelector.automaticOrder[0]
        var engineEnvironment = resolver.engineEnvironment()
        // Per-run files go to a locked directory of their own, removed afterwards (or by a later
        // run when this one is killed).
        let scratch = try RunScratch(tmpDir: engineEnvironment.tmpDir)
        defer { scratch.remove() }
        engineEnvironment.tmpDir = scratch.path
        let engine = try EngineSelector.engine(for: mode, environment: engineEnvironment)

        // --dri: udocker's dri_list directories that exist here, as volumes
        let driDirectories =
            dri ? context.configuration["dri_list"].split(separator: " ").map(String.init).filter(FileInfo.isDirectory) : []
        let options = try runOptions(driDirectories: driDirectories, environment: context.environment)

        guard let record else {
            return try runLocation(location ?? "", directory: scratch.path, engine: engine, options: options, context: context)
        }
        let instance = ContainerInstance(record, useConfig: !nometa, recordMode: { try repo.setExecutionMode(id, $0) })
        let status: Int32
        do {
            // Shared while running: `rm` and `setup` wait for an exclusive lock and refuse meanwhile.
            let lock = try repo.containerLock(id, .shared)
            defer { lock?.unlock() }
            // No mode of its own: the next engine of N1 → R1 → P1 → F3 that works here, recorded.
            status = try EngineRunner().run(engine, container: instance, options: options, label: target, fallback: chosen == nil)
        }
        if rm {
            if repo.isContainerProtected(id) {
                context.messages.warning("container is protected, not removed: \(id)")
            } else {
                do { try repo.removeContainer(id) } catch { context.messages.warning("could not remove container \(id): \(error)") }
            }
        }
        return status
    }

    /// What reaches the engine. Every option of `RunArguments.options` either changes the answer
    /// or is one that steers only the request (`RunArgumentsTests.notForTheEngine`): a test
    /// holds each option to one of the two. `driDirectories`: the volumes `--dri` adds.
    func runOptions(driDirectories: [String], environment: [String: String] = [:]) throws -> RunOptions {
        var options = RunOptions()
        // udocker treats an empty value (`--user=""`) as not given; only --entrypoint="" means something.
        func given(_ v: String?) -> String? { v?.isEmpty == true ? nil : v }
        options.user = given(user)
        options.env = env
        options.envFiles = envFile
        options.volumes = volumes + (dri ? driDirectories : [])
        options.noVolumes = novol
        options.workdir = given(workdir)
        options.entrypoint = entrypoint
        options.command = command
        options.hostauth = hostauth
        options.containerauth = containerauth
        options.bindhome = bindhome
        options.nosysdirs = nosysdirs
        options.nometa = nometa
        options.hostenv = hostenv
        options.kernel = given(kernel)
        options.cpusetCpus = given(cpuset)
        options.noBanner = nobanner
        options.devices = device
        options.nvidia = nvidia
        options.gpus = gpus
        if let mpi, !["host", "none"].contains(mpi) { throw CommandFailure("invalid --mpi value: \(mpi) (host or none)") }
        options.mpi = mpi
        switch join {
        case nil: break
        case "yes":
            guard JobStep.detect(environment) != nil else { throw CommandFailure(JobStep.notAStep) }
            options.join = true
        case "no": options.join = false
        case let value?: throw CommandFailure("invalid --join value: \(value) (yes or no)")
        }
        return options
    }

    /// `--location=DIR`: a bare root tree, no metadata; per-run engine files go to this run's
    /// scratch directory (removed afterwards), never into the tree's parent.
    func runLocation(
        _ location: String, directory: String, engine: any ExecutionEngine, options: RunOptions,
        context: CommandContext
    ) throws -> Int32 {
        let root = location.hasPrefix("/") ? location : FileManager.default.currentDirectoryPath + "/" + location
        guard FileInfo.isDirectory(root) else { throw CommandFailure("--location is not a directory: \(location)") }
        if rm { context.messages.warning("--rm is ignored with --location") }
        return try engine.run(ContainerInstance(id: "", directory: directory, root: root), options: options)
    }

    /// An existing container, or a new one from an image (pulled if needed), as udocker's run does.
    func containerToRun(_ context: CommandContext, pullPolicy: PullPolicy) async throws -> String {
        let repo = context.repository
        if let id = repo.containerID(target) {
            if let name, repo.containerID(name) == nil { try repo.setContainerName(id, name) }
            return id
        }
        if pullPolicy == .reuse, let name {
            // Many tasks of one job on one node: the first pulls and creates, the others wait and reuse it.
            let lock = try repo.namedCreationLock()
            defer { lock.unlock() }
            if let id = repo.containerID(name) { return id }
            return try await imageToContainer(context, pullPolicy: pullPolicy)
        }
        return try await imageToContainer(context, pullPolicy: pullPolicy)
    }

    func imageToContainer(_ context: CommandContext, pullPolicy: PullPolicy) async throws -> String {
        let repo = context.repository
        guard let image = try? LocalImageName(parsing: target) else {
            throw CommandFailure("container or image not found: \(target)")
        }
        if let name {
            try LocalRepository.validateName(name)
            if repo.containerID(name) != nil { throw CommandFailure("container name already exists: \(name)") }
        }
        let haveImage = repo.imageExists(image)
        if pullPolicy == .always || (!haveImage && pullPolicy != .never) {
            context.messages.info("pulling \(target)")
            let pulled = try await ImagePuller(context: context, registry: registry, index: index, httpProxy: httpproxy).pull(
                target, platform: platform)
            return try repo.createContainer(from: pulled, name: name, storage: storageKind(context), warn: context.messages.warning)
        }
        // udocker 1.3.17 exits 2 here (its engine finds no container to run).
        guard haveImage else { throw CommandFailure("container or image not found: \(target)", status: pullPolicy == .never ? 2 : 1) }
        return try repo.createContainer(from: image, name: name, storage: storageKind(context), warn: context.messages.warning)
    }

    func storageKind(_ context: CommandContext) throws -> ContainerStorage {
        try context.configuration.containerStorage(option: storage)
    }
}
