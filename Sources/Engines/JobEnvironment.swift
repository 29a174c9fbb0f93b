import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// What a batch system or an MPI launcher hands to each task, and what a task in a container
/// needs of the host to take part in the job (one hook of the common plan, so every engine
/// honours it): the job's variables, the host's `/dev/shm` (Open MPI's shared-memory transport)
/// and the launcher's session directory (the PMIx dstore and the Open MPI job directory).
public enum JobEnvironment {
    /// Host variables that reach the container without `--hostenv` (config `job_env_prefixes`,
    /// env `UDOCKER_JOB_ENV_PREFIXES`): a key passes when it starts with one of these.
    public static let defaultPrefixes = [
        "OMPI_", "PMIX_", "PMI_", "PRTE_", "SLURM_", "HYDRA_", "MPIR_CVAR_", "UCX_",
        "CUDA_VISIBLE_DEVICES", "NVIDIA_",
    ]

    /// Variables naming the launcher's session directories (bound at the same path when they
    /// exist): Open MPI's top session directory holds the PMIx server directory and dstore;
    /// Slurm's PMIx plugin puts them under its spool directory.
    static let sessionDirectoryKeys = [
        "OMPI_MCA_orte_top_session_dir", "PMIX_SERVER_TMPDIR",
        "PMIX_DSTORE_21_BASE_PATH", "PMIX_DSTORE_ESH_BASE_PATH",
    ]

    /// Open MPI's single-copy mechanism for on-node messages (vader BTL).
    static let vaderSingleCopyKey = "OMPI_MCA_btl_vader_single_copy_mechanism"

    /// The host's name table, bound into every task of a job (`jobVolumes`).
    static let hostsFile = "/etc/hosts"

    /// Variables that mark a task of a job (a launcher or a batch step started this process).
    static let jobMarkers = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_FD", "SLURM_STEP_ID", "SLURM_JOB_ID"]

    /// Parses the configured list (space or comma separated); empty entries are dropped.
    public static func prefixes(from text: String) -> [String] {
        text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }).map(String.init)
    }

    static func passes(_ key: String, prefixes: [String]) -> Bool {
        prefixes.contains { key.hasPrefix($0) }
    }

    static func isJobTask(_ host: [String: String]) -> Bool {
        jobMarkers.contains { host[$0] != nil }
    }

    /// A rank of an MPI launcher runs as the host user inside the container (not root): the
    /// launcher's PMIx server refuses a client whose credentials name another uid ("psec: socket
    /// cred contains invalid uid 0"; over TCP the client sends its own euid), so a rank that
    /// shows uid 0 dies in MPI_Init. `--user` still wins.
    static func keepsHostIdentity(_ host: [String: String]) -> Bool {
        switch MPILauncher.detect(host) {
        case .openMPI?, .pmix?, .pmi?: return true
        default: return false
        }
    }

    /// A user name that can go into a passwd line as it is.
    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 32
            && name.unicodeScalars.allSatisfy {
                ($0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType == .decimal)) || "._-".unicodeScalars.contains($0)
            } && !name.hasPrefix("-")
    }

    /// The launcher's session directories that exist on the host, outermost only, never `/`
    /// or a top-level directory such as `/tmp` itself (that would expose all of it). Bound
    /// read-write, so only what can be a launcher's own directory (security review N8): the
    /// variable's launcher must be the one that started this task (Open MPI's `mpirun` for
    /// `OMPI_MCA_orte_top_session_dir`, a PMIx server for `PMIX_*`), the directory must be the
    /// user's own, and neither `home` nor a directory above it (a session directory set to
    /// `$HOME` would hand every rank the whole home).
    static func sessionDirectories(_ host: [String: String], uid: uid_t, home: String?) -> [String] {
        let launcher = MPILauncher.detect(host)
        let normalizedHome = home.flatMap { $0.hasPrefix("/") ? PathName.normalize($0) : nil }
        var dirs: [String] = []
        for key in sessionDirectoryKeys {
            let started = key.hasPrefix("OMPI_") ? launcher == .openMPI : launcher == .openMPI || launcher == .pmix
            guard started, let v = host[key], v.hasPrefix("/") else { continue }
            let n = PathName.normalize(v)
            guard PathName.components(n).count >= 2 else { continue }
            if let h = normalizedHome, PathName.isUnder(h, n) { continue }
            var st = stat()
            guard stat(n, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == uid else { continue }
            if dirs.contains(where: { PathName.isUnder(n, $0) }) { continue }
            dirs.removeAll { PathName.isUnder($0, n) }
            dirs.append(n)
        }
        return dirs
    }
}

extension PlanBuilder {
    /// `--user` for a rank of an MPI job when none was given: the host's `uid:gid` (R1 runs it
    /// in an outer user namespace, `RuncIdentity`; where it cannot, `checkMPI` refuses the rank).
    var jobUser: String? {
        guard options.user?.isEmpty ?? true, JobEnvironment.keepsHostIdentity(env.hostEnvironment),
            !capabilities.contains(.identityThroughOuterNamespace)
                || RuncIdentity.unavailableReason(environment: env.hostEnvironment) == nil
        else { return nil }
        return "\(host.uid):\(host.gid)"
    }

    /// `PMI_FD` of a PMI-1 launcher (MPICH's Hydra): the inherited socket to the launcher's PMI
    /// server, which the rank must inherit too. Only a descriptor > 2 that is open here.
    var jobDescriptor: Int32? {
        guard let text = env.hostEnvironment["PMI_FD"], let fd = Int32(text), fd > 2, fcntl(fd, F_GETFD) >= 0 else { return nil }
        return fd
    }

    /// The job's variables: they win over the image's `Env` (the launcher's per-rank values must
    /// reach the rank), never over `-e` or `--env-file`.
    func addJobVariables(to e: inout EnvironmentList) {
        for key in env.hostEnvironment.keys.sorted() where JobEnvironment.passes(key, prefixes: env.jobEnvironmentPrefixes) {
            if Self.blockedHostVariables.contains(key) { continue }
            let value = env.hostEnvironment[key]!
            if imageKeys.contains(key) || !e.contains(key) { e.set(key, value) }
        }
        // N1 and the R modes put each rank in its own user namespace, and the kernel lets a process open
        // a peer's /proc/<pid>/fd/<n> or read its memory (CMA) across user namespaces only with
        // CAP_SYS_PTRACE: UCX (MPICH's default transport) then fails ("Shared memory error").
        // Its named /dev/shm segments work; the user's own value wins. Ranks of a step joined in
        // one instance (`JobStep.toJoin`, N1) share the user namespace: single copy works there.
        let joined = capabilities.contains(.joinsJobSteps) && JobStep.toJoin(options.join, environment: env.hostEnvironment) != nil
        if capabilities.contains(.ownUserNamespace) && !joined, JobEnvironment.isJobTask(env.hostEnvironment) {
            if !e.contains("UCX_POSIX_USE_PROC_LINK") { e.set("UCX_POSIX_USE_PROC_LINK", "n") }
            // Open MPI's vader BTL the same way: its default single copy (CMA) finds the peers in
            // other user namespaces, falls back to its emulation and says so on every rank
            // ("WARNING: The default btl_vader_single_copy_mechanism CMA is not available due to
            // different user namespaces"). Asked for from the start: the same transport, no warning.
            if !e.contains(JobEnvironment.vaderSingleCopyKey) { e.set(JobEnvironment.vaderSingleCopyKey, "emulated") }
        }
    }

    /// Binds for a task of a job: the host `/dev/shm` (unless a `/dev` bind already shows it)
    /// and the launcher's session directories (unless a volume covers them), and the host's
    /// `/etc/hosts` (unless a volume covers it). Missing ones are dropped silently, and
    /// `--novol` removes them like any other bind.
    func jobVolumes(after list: [VolumeSpec]) -> [VolumeSpec] {
        guard JobEnvironment.isJobTask(env.hostEnvironment) else { return [] }
        var out: [VolumeSpec] = []
        var covered = list.filter { $0.host == $0.container }.map(\.container)
        for dir in ["/dev/shm"] + JobEnvironment.sessionDirectories(env.hostEnvironment, uid: host.uid, home: host.home)
        where !covered.contains(where: { PathName.isUnder(dir, $0) }) {
            out.append(VolumeSpec(spec: dir, host: dir, container: dir, isSysdir: true))
            covered.append(dir)
        }
        // Name lookups as a bare task makes them: the launcher's node names, and `localhost`
        // without asking DNS. A minbase image has no /etc/hosts, and under an oversubscribed
        // mpirun every rank loads the hwloc topology, whose GL plugin probes X displays on
        // `localhost`: ~30 DNS queries per rank, one lost query = a 5 s resolver timeout
        // (issue 25, docs/hpc.md).
        let hosts = JobEnvironment.hostsFile
        var st = stat()
        if !list.contains(where: { PathName.isUnder(hosts, $0.container) }), stat(hosts, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG {
            // Read-only, as every host file we choose to bind (security review N1).
            out.append(VolumeSpec(spec: hosts, host: hosts, container: hosts, isSysdir: true, readOnly: true))
        }
        return out
    }
}
