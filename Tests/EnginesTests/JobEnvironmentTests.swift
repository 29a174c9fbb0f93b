import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Engines
import OCI

@Suite struct JobEnvironmentTests {
    static let job = [
        "PATH": "/usr/bin:/bin", "HOME": "/root", "USER": "root", "SECRET_TOKEN": "s3cr3t",
        "OMPI_COMM_WORLD_RANK": "3", "PMIX_RANK": "3", "PMI_FD": "7", "SLURM_PROCID": "3",
        "CUDA_VISIBLE_DEVICES": "0,1", "NVIDIA_VISIBLE_DEVICES": "all", "SLURM_JOB_ID": "42",
    ]

    func plan(
        _ c: BusyboxContainer, host: [String: String], sysdirs: [String] = [], prefixes: [String]? = nil,
        config: ImageConfig.Config? = nil, _ configure: (inout RunOptions) -> Void = { _ in }
    ) throws -> ExecutionPlan {
        var env = c.environment(host: host, sysdirs: sysdirs)
        if let prefixes { env.jobEnvironmentPrefixes = prefixes }
        return try ExecutionPlan.make(
            container: c.instance(config: config), options: options(["true"], configure),
            environment: env, mode: .N1)
    }

    @Test func jobStepFromTheLaunchersVariables() {
        let ompi = ["OMPI_COMM_WORLD_LOCAL_SIZE": "4", "PMIX_NAMESPACE": "1211629569", "OMPI_MCA_ess_base_jobid": "1211629569"]
        #expect(JobStep.detect(ompi) == JobStep(job: "1211629569", step: "0", localSize: 4))
        let slurm = [
            "SLURM_JOB_ID": "42", "SLURM_STEP_ID": "3", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
            "SLURM_STEP_NUM_NODES": "3", "SLURM_STEP_TASKS_PER_NODE": "2(x2),1",
        ]
        #expect(JobStep.detect(slurm) == JobStep(job: "42", step: "3", localSize: 2))
        var last = slurm
        last["SLURM_NODEID"] = "2"
        #expect(JobStep.detect(last)?.localSize == 1)
        #expect(
            JobStep.detect([
                "SLURM_JOB_ID": "42", "SLURM_STEP_ID": "0", "SLURM_LOCALID": "0", "SLURM_STEP_NUM_NODES": "1", "SLURM_STEP_NUM_TASKS": "3",
            ])?.localSize == 3)
        #expect(JobStep.tasksOnNode("3,1(x2)", node: 2) == 1)
        #expect(JobStep.tasksOnNode("3,x", node: 1) == nil)
        #expect(JobStep.detect(["OMPI_COMM_WORLD_LOCAL_SIZE": "4"]) == nil, "no job id")
        #expect(JobStep.detect(["SLURM_JOB_ID": "42"]) == nil, "no task count")
        // Automatic with more than one task here; --join=no never; --join=yes with one task too.
        #expect(JobStep.toJoin(nil, environment: ompi) != nil)
        #expect(JobStep.toJoin(false, environment: ompi) == nil)
        var one = ompi
        one["OMPI_COMM_WORLD_LOCAL_SIZE"] = "1"
        #expect(JobStep.toJoin(nil, environment: one) == nil)
        #expect(JobStep.toJoin(true, environment: one) != nil)
    }

    @Test func rendezvousInTheFirstRunDirectoryThatExists() {
        #expect(JobJoin.runDirectory(["XDG_RUNTIME_DIR": "/proc/self/no-such-dir/run/user/1", "TMPDIR": "/"]) == "/")
        #expect(JobJoin.runDirectory(["XDG_RUNTIME_DIR": "relative", "TMPDIR": "/proc/self/no-such-dir"]) == "/tmp")
        #expect(JobJoin.runDirectory(["XDG_RUNTIME_DIR": "/dev"]) == "/dev")
    }

    @Test func joinedRanksKeepSingleCopy() throws {
        let c = try BusyboxContainer()
        var host = Self.job
        host["OMPI_COMM_WORLD_SIZE"] = "2"
        host["OMPI_COMM_WORLD_LOCAL_SIZE"] = "2"
        host["PMIX_NAMESPACE"] = "1211629569"
        let joined = try plan(c, host: host)
        defer { joined.removeTemporaryFiles() }
        #expect(joined.environmentValue("OMPI_MCA_btl_vader_single_copy_mechanism") == nil)
        #expect(joined.environmentValue("UCX_POSIX_USE_PROC_LINK") == nil)
        let apart = try plan(c, host: host) { $0.join = false }
        defer { apart.removeTemporaryFiles() }
        #expect(apart.environmentValue("OMPI_MCA_btl_vader_single_copy_mechanism") == "emulated")
        #expect(apart.environmentValue("UCX_POSIX_USE_PROC_LINK") == "n")
    }

    @Test func jobVariablesPassOthersDoNot() throws {
        let c = try BusyboxContainer()
        var config = ImageConfig.Config()
        config.env = ["SLURM_PROCID=from-image", "CUDA_VISIBLE_DEVICES=image"]
        let p = try plan(c, host: Self.job, config: config) { $0.env = ["CUDA_VISIBLE_DEVICES=cli"] }
        defer { p.removeTemporaryFiles() }
        for k in ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"] { #expect(p.environmentValue(k) == "3", "\(k)") }
        #expect(p.environmentValue("PMI_FD") == "7")
        #expect(p.environmentValue("NVIDIA_VISIBLE_DEVICES") == "all")
        #expect(p.environmentValue("CUDA_VISIBLE_DEVICES") == "cli", "-e wins over the launcher")
        #expect(p.environmentValue("SECRET_TOKEN") == nil)
    }

    @Test func prefixListComesFromConfiguration() throws {
        let c = try BusyboxContainer()
        let p = try plan(c, host: Self.job, prefixes: JobEnvironment.prefixes(from: "SLURM_, CUDA_VISIBLE_DEVICES"))
        defer { p.removeTemporaryFiles() }
        #expect(p.environmentValue("SLURM_PROCID") == "3")
        #expect(p.environmentValue("CUDA_VISIBLE_DEVICES") == "0,1")
        #expect(p.environmentValue("OMPI_COMM_WORLD_RANK") == nil)
        let none = try plan(c, host: Self.job, prefixes: JobEnvironment.prefixes(from: ""))
        defer { none.removeTemporaryFiles() }
        #expect(none.environmentValue("SLURM_PROCID") == nil)
    }

    @Test func jobTaskGetsHostShmAndSessionDirectory() throws {
        let c = try BusyboxContainer()
        let session = c.hostDir + "/ompi.host.1000"
        try FileManager.default.createDirectory(atPath: session + "/pid.1/pmix_dstor_ds21_1", withIntermediateDirectories: true)
        var host = Self.job
        host["OMPI_COMM_WORLD_SIZE"] = "4"  // Open MPI's mpirun: its own and its PMIx server's variables
        host["OMPI_MCA_orte_top_session_dir"] = session
        host["PMIX_SERVER_TMPDIR"] = session + "/pid.1"
        host["PMIX_DSTORE_21_BASE_PATH"] = session + "/pid.1/pmix_dstor_ds21_1"
        host["PMIX_DSTORE_ESH_BASE_PATH"] = "/tmp"  // never all of /tmp
        let p = try plan(c, host: host)
        defer { p.removeTemporaryFiles() }
        #expect(p.mounts.filter { $0.isSysdir }.map(\.target) == ["/dev/shm", session, "/etc/hosts"])
        // A host file we bind is read-only (security review N1); the shared memory and the session stay writable.
        #expect(p.mounts.filter { $0.isSysdir }.map(\.readOnly) == [false, false, true])
        #expect(p.mounts.filter { $0.isSysdir }.allSatisfy { $0.source == $0.target })

        // A /dev bind already shows the host's /dev/shm; no job, no extra binds.
        let withDev = try plan(c, host: host, sysdirs: ["/dev"])
        defer { withDev.removeTemporaryFiles() }
        #expect(!withDev.mounts.contains { $0.target == "/dev/shm" })
        let alone = try plan(c, host: ["PATH": "/bin", "PMIX_SERVER_TMPDIR": session])
        defer { alone.removeTemporaryFiles() }
        #expect(!alone.mounts.contains { $0.isSysdir })
        // --novol drops them like any bind.
        let dropped = try plan(c, host: host) { $0.noVolumes = ["/dev/shm"] }
        defer { dropped.removeTemporaryFiles() }
        #expect(dropped.mounts.filter { $0.isSysdir }.map(\.target) == [session, "/etc/hosts"])
        // A volume on /etc (or /etc/hosts) keeps the user's.
        let own = try plan(c, host: host) { $0.volumes = [c.hostDir + ":/etc"] }
        defer { own.removeTemporaryFiles() }
        #expect(!own.mounts.contains { $0.target == "/etc/hosts" })
    }

    @Test func openMPIParameterFiles() throws {
        let text = """
            # Debian's default
            btl_base_warn_component_unused=0
            mtl = ^ofi
              btl =  ^uct,openib,ofi\t
            // a line comment = no
            /* a block
            comment = no */
            pml = ^ucx
            -mca foo bar
            bad key = x
            empty =
            """
        let values = OpenMPIParameters.parse(text)
        #expect(values.map(\.key) == ["btl_base_warn_component_unused", "mtl", "btl", "pml"])
        #expect(values.map(\.value) == ["0", "^ofi", "^uct,openib,ofi", "^ucx"])
        #expect(
            OpenMPIParameters.siteFiles(libraryDirectory: "/usr/lib/x86_64-linux-gnu") == ["/etc/openmpi/openmpi-mca-params.conf"])
        #expect(
            OpenMPIParameters.siteFiles(libraryDirectory: "/opt/ompi-4.1/lib64")
                == ["/etc/openmpi/openmpi-mca-params.conf", "/opt/ompi-4.1/etc/openmpi-mca-params.conf"])

        // The host's values: the site file, then the user's over it; OPAL_SYSCONFDIR names the site.
        let dir = NSTemporaryDirectory() + "ompi-params-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/home/.openmpi", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "btl = ^ofi\npml = ^ucx\n".write(toFile: dir + "/etc/openmpi-mca-params.conf", atomically: false, encoding: .utf8)
        try "btl = self,vader\n".write(toFile: dir + "/home/.openmpi/mca-params.conf", atomically: false, encoding: .utf8)
        let host = OpenMPIParameters.hostValues(libraryDirectory: nil, home: dir + "/home", environment: ["OPAL_SYSCONFDIR": dir + "/etc"])
        #expect(host.map { "\($0.key)=\($0.value)" } == ["pml=^ucx", "btl=self,vader"])
    }

    /// N8: a session directory is bound only when its launcher started the task, it is the
    /// user's own, and it is neither $HOME nor above it.
    @Test func sessionDirectoriesAreTheLaunchersOnly() throws {
        let c = try BusyboxContainer()
        let home = c.hostDir + "/home"
        let session = home + "/ompi.session"
        try FileManager.default.createDirectory(atPath: session, withIntermediateDirectories: true)
        var host = Self.job
        host["HOME"] = home
        func sessions(_ h: [String: String]) throws -> [String] {
            let p = try plan(c, host: h)
            defer { p.removeTemporaryFiles() }
            // The job binds that are not session directories: /dev/shm and the host's /etc/hosts.
            return p.mounts.filter { $0.isSysdir && !["/dev/shm", "/etc/hosts"].contains($0.target) }.map(\.target)
        }
        // Slurm job, no launcher (SLURM_JOB_ID only): none, whatever the variables say.
        #expect(
            try sessions(["PATH": "/bin", "SLURM_JOB_ID": "42", "OMPI_MCA_orte_top_session_dir": session, "PMIX_SERVER_TMPDIR": session])
                .isEmpty)
        // A PMIx rank (srun --mpi=pmix): the PMIx directory, not Open MPI's session directory.
        host["OMPI_MCA_orte_top_session_dir"] = session
        #expect(try sessions(host).isEmpty)
        host["PMIX_SERVER_TMPDIR"] = session
        #expect(try sessions(host) == [session])
        // $HOME itself, or a directory above it: never.
        for dir in [home, c.hostDir] {
            host["PMIX_SERVER_TMPDIR"] = dir
            host["OMPI_MCA_orte_top_session_dir"] = dir
            host["OMPI_COMM_WORLD_SIZE"] = "2"
            #expect(try sessions(host).isEmpty, "\(dir)")
        }
        // Not the user's own directory: one given to another uid (as root), else a system one.
        var foreign = "/usr/share"
        if getuid() == 0 {
            foreign = c.hostDir + "/other"
            try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
            #expect(chown(foreign, 4242, 4242) == 0)
        }
        host["PMIX_SERVER_TMPDIR"] = foreign
        host["OMPI_MCA_orte_top_session_dir"] = session
        #expect(try sessions(host) == [session])
    }

    @Test func rankRunsAsTheHostUser() throws {
        let c = try BusyboxContainer()
        // PMIx's server accepts only its own uid: a rank is the host user, quietly, in /.
        let rank = try plan(c, host: ["PATH": "/bin", "OMPI_COMM_WORLD_SIZE": "2", "PMIX_RANK": "1"])
        defer { rank.removeTemporaryFiles() }
        #expect(rank.user.uid == getuid() && rank.user.gid == getgid())
        #expect(rank.warnings.isEmpty, "\(rank.warnings)")
        if getuid() != 0 { #expect(rank.cwd == "/") }
        // --user wins; outside a job, or under srun without MPI, root as before.
        let chosen = try plan(c, host: ["PATH": "/bin", "PMIX_RANK": "1"]) { $0.user = "1234:1234" }
        defer { chosen.removeTemporaryFiles() }
        #expect(chosen.user.uid == 1234)
        for host in [["PATH": "/bin"], ["SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "1"]] {
            let alone = try plan(c, host: host) { $0.user = nil }
            defer { alone.removeTemporaryFiles() }
            #expect(alone.user.isRoot && JobEnvironment.keepsHostIdentity(host) == false)
        }
        #expect(JobEnvironment.isPlainName("udtest") && !JobEnvironment.isPlainName("a:b") && !JobEnvironment.isPlainName("x\ny"))
    }

    @Test func launcherDetection() {
        #expect(MPILauncher.detect(["OMPI_COMM_WORLD_SIZE": "4", "PMIX_RANK": "0"]) == .openMPI)
        #expect(MPILauncher.detect(["PMIX_RANK": "0", "SLURM_STEP_ID": "0"]) == .pmix)
        #expect(MPILauncher.detect(["PMI_RANK": "0", "PMI_FD": "5"]) == .pmi)
        #expect(
            MPILauncher.detect(["SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "2", "SLURM_MPI_TYPE": "none"]) == .slurmWithoutMPI(tasks: 2))
        #expect(MPILauncher.detect(["SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "1"]) == nil)
        #expect(MPILauncher.detect(["PATH": "/bin"]) == nil)
    }

    @Test func compatibilityRules() {
        let ompi41 = MPILibrary(vendor: .openMPI, soname: "libmpi.so.40", fileName: "libmpi.so.40.30.4", usesPMIx: true)
        let ompi40 = MPILibrary(vendor: .openMPI, soname: "libmpi.so.40", fileName: "libmpi.so.40.20.3", usesPMIx: true)
        let mpich = MPILibrary(vendor: .mpich, soname: "libmpich.so.12", fileName: "libmpich.so.12.2.2", usesPMIx: false)
        #expect(ompi41.series == "40.30")
        #expect(MPICompatibility.problem(program: "/r", library: ompi41, launcher: .openMPI, host: ompi41) == nil)
        #expect(MPICompatibility.problem(program: "/r", library: ompi41, launcher: .openMPI, host: nil) == nil)
        let release = MPICompatibility.problem(program: "/r", library: ompi40, launcher: .openMPI, host: ompi41)
        #expect(release?.contains("Open MPI (libmpi.so.40.20.3)") == true && release?.contains("libmpi.so.40.30.4") == true)
        let vendor = MPICompatibility.problem(program: "/usr/bin/ring", library: mpich, launcher: .openMPI, host: ompi41)
        #expect(
            vendor == "MPI mismatch: ring uses MPICH (libmpich.so.12.2.2) but was started by Open MPI's mpirun "
                + "(Open MPI (libmpi.so.40.30.4)); its ranks would run as separate one-rank jobs")
        #expect(MPICompatibility.problem(program: "/r", library: ompi41, launcher: .pmix, host: nil) == nil)
        #expect(MPICompatibility.problem(program: "/r", library: mpich, launcher: .pmix, host: nil)?.contains("no PMIx") == true)
        #expect(MPICompatibility.problem(program: "/r", library: mpich, launcher: .pmi, host: nil) == nil)
        #expect(MPICompatibility.problem(program: "/r", library: ompi41, launcher: .pmi, host: nil) != nil)
        #expect(
            MPICompatibility.problem(program: "/r", library: ompi41, launcher: .slurmWithoutMPI(tasks: 2), host: nil)?
                .contains("--mpi=pmix") == true)
    }
}
