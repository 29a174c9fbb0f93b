import Foundation
import Testing
import TestSupport

/// Issue 25 item 2: the ranks of a job step on one node share one N1 container instance (one
/// user and mount namespace; the host's PID namespace), set up by the first rank and entered by
/// the others (`JobJoin`, docs/hpc.md). Real `mpirun` (Open MPI 4.1) and the `mpi-openmpi` image.
@Suite("E2E HPC: the ranks of a node in one container (N1 --join)", e2eEnabled)
struct JoinTests {
    /// Each rank's `ns user:[…] mnt:[…] pid N`, printed once every rank has arrived (a file
    /// barrier in a bound directory: the kernel reuses the number of a namespace that is gone).
    func namespaces(_ box: E2ESandbox, ranks: Int, _ options: [String] = [], barrier: String) async throws -> [String] {
        try box.makeUserDirectory("\(box.tmp)/\(barrier)")
        let script = """
            touch /b/$OMPI_COMM_WORLD_RANK; \(Self.wait("[ $(ls /b | wc -l) -ge \(ranks) ]"))
            echo ns $(readlink /proc/self/ns/user) $(readlink /proc/self/ns/mnt) pid $$
            """
        let r = try await box.launch(
            "/usr/bin/mpirun",
            ["--oversubscribe", "-np", "\(ranks)", box.env.binary, "run", "--nobanner", "-v", "\(box.tmp)/\(barrier):/b"] + options
                + ["mpi", "sh", "-c", script])
        expectSuccess(r)
        return r.stdoutLines.filter { $0.hasPrefix("ns ") }
    }

    @Test("mpirun -np 4: one user and mount namespace for the 4 ranks; --join=no: one each", hasOpenMPILauncher)
    func ranksShareOneInstance() async throws {
        let box = try sandbox("join-ns")
        try await box.mpiContainer("mpi-openmpi", name: "mpi", mode: "N1")
        let host = try await box.shell("readlink /proc/self/ns/user")
        let joined = try await namespaces(box, ranks: 4, barrier: "joined")
        #expect(joined.count == 4, "\(joined)")
        let spaces = Set(joined.map { $0.components(separatedBy: " pid ")[0] })
        #expect(spaces.count == 1, "joined ranks in several namespaces: \(joined)")
        #expect(!joined.contains { $0.contains(host.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) }, "\(joined)")
        // The host's PID namespace: four real, distinct PIDs.
        let pids = Set(joined.compactMap { $0.components(separatedBy: " pid ").last })
        #expect(pids.count == 4 && !pids.contains("1"), "\(joined)")
        // The rendezvous is gone once every rank has entered.
        let left = try await box.shell("ls -A \(box.tmp)/udocker-join-*/ 2>/dev/null")
        #expect(left.stdout.isEmpty, "rendezvous left behind: \(left)")

        let apart = try await namespaces(box, ranks: 4, ["--join=no"], barrier: "apart")
        #expect(apart.count == 4 && Set(apart.map { $0.components(separatedBy: " pid ")[0] }).count == 4, "\(apart)")
    }

    @Test("ranks whose binds differ (-v DIR$RANK:/out) are not put in one container", hasOpenMPILauncher)
    func differentBindsStayApart() async throws {
        let box = try sandbox("join-binds")
        try await box.mpiContainer("mpi-openmpi", name: "mpi", mode: "N1")
        for rank in 0..<2 { try box.makeUserDirectory("\(box.tmp)/out\(rank)") }
        let script =
            "exec \(box.env.binary) run --nobanner -v \(box.tmp)/out$OMPI_COMM_WORLD_RANK:/out mpi sh -c 'touch /out/mine'"
        let r = try await box.launch("/usr/bin/mpirun", ["--oversubscribe", "-np", "2", "sh", "-c", script])
        expectSuccess(r)
        // Each rank wrote into its own directory (one container would show both the first rank's).
        #expect(box.exists("\(box.tmp)/out0/mine") && box.exists("\(box.tmp)/out1/mine"), "\(r)")
    }

    @Test("vader with single copy forced to cma: works for joined ranks", hasOpenMPILauncher)
    func singleCopyCMA() async throws {
        let box = try sandbox("join-cma")
        try await box.mpiContainer("mpi-openmpi", name: "mpi", mode: "N1")
        // vader only (no TCP to fall back on), CMA only; 1 MiB messages go by single copy.
        let cma = ["OMPI_MCA_btl": "self,vader", "OMPI_MCA_btl_vader_single_copy_mechanism": "cma"]
        let args = ["--oversubscribe", "-np", "2", box.env.binary, "run", "--nobanner"]
        let joined = try await box.launch("/usr/bin/mpirun", args + ["mpi", "pingpong", "1048576", "0.05"], environment: cma)
        expectSuccess(joined)
        #expect(joined.stdoutLines.contains { $0.hasPrefix("pingpong: size=1048576 ") }, "\(joined)")
        // Each rank in its own user namespace, the kernel refuses process_vm_readv between them.
        let apart = try await box.launch(
            "/usr/bin/mpirun", args + ["--join=no", "mpi", "pingpong", "1048576", "0.05"], environment: cma)
        #expect(
            !apart.succeeded && (apart.stdout + apart.stderr).contains("cma-different-user-namespace"),
            "unjoined ranks with CMA forced: \(apart)")
    }

    /// A shell loop until `condition`, bounded by a count of rounds (so a rank never outlives a
    /// failed test when the launcher is killed).
    static func wait(_ condition: String) -> String {
        "n=0; until [ $((n=n+1)) -gt 2000 ] || { \(condition); }; do sleep 0.05; done"
    }

    /// A two-rank `mpirun` of `sh -c SCRIPT` where each rank writes its udocker's stderr and
    /// status to `rank<N>.err` / `rank<N>.rc` in the sandbox's TMPDIR.
    func twoRanks(_ box: E2ESandbox, leader: String, member: String) async throws -> (leader: String, member: String, rc: String) {
        let script = """
            cd "$TMPDIR"; r=$OMPI_COMM_WORLD_RANK
            if [ "$r" = 0 ]; then \(leader); else \(member); fi
            """
        let r = try await box.launch("/usr/bin/mpirun", ["--oversubscribe", "-np", "2", "sh", "-c", script])
        #expect(!r.timedOut, "\(r)")
        return (
            box.readFile("\(box.tmp)/rank0.err") ?? "", box.readFile("\(box.tmp)/rank1.err") ?? "",
            box.readFile("\(box.tmp)/rank1.rc") ?? ""
        )
    }

    @Test("the first rank fails its set-up: the other exits with one line naming it", hasOpenMPILauncher)
    func leaderFailsSetUp() async throws {
        let box = try sandbox("join-fail")
        try await box.mpiContainer("mpi-openmpi", name: "mpi", mode: "N1")
        try #require(try await box.udocker(["setup", "--execmode=N1", "mpi"]).succeeded)
        let run = "\(box.env.binary) run --nobanner mpi true"
        // Rank 0 runs in a user namespace of its own where no further one may be made
        // (user.max_user_namespaces is per namespace); rank 1 starts once rank 0 has taken the lead.
        let (leader, member, rc) = try await twoRanks(
            box,
            leader: "unshare -c --keep-caps sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec \(run)' 2>rank0.err; true",
            member: Self.wait("[ -n \"$(ls udocker-join-*/*/leader 2>/dev/null)\" ]") + "; \(run) 2>rank1.err; echo $? >rank1.rc"
        )
        #expect(leader.contains("Error: N1 cannot start"), "leader: \(leader)")
        let lines = member.split(separator: "\n")
        #expect(lines.count == 1, "member: \(member)")
        #expect(
            lines.first?.hasPrefix("Error: the first rank of this job step could not set up the container: N1 cannot start") == true,
            "\(member)")
        #expect(rc == "1\n", "member status: \(rc)")
    }

    @Test("the container's holder is killed: the other rank exits with one line, no hang", hasOpenMPILauncher)
    func holderKilled() async throws {
        let box = try sandbox("join-kill")
        try await box.mpiContainer("mpi-openmpi", name: "mpi", mode: "N1")
        let run = "\(box.env.binary) run --nobanner mpi"
        // Rank 0 sets the container up and sleeps in it; once the state is `ready`, its udocker
        // and the holder are killed (the rank with them), then rank 1 tries to enter.
        let (_, member, rc) = try await twoRanks(
            box,
            leader: """
                \(run) sleep 600 2>rank0.err & l=$!
                \(Self.wait("s=$(cat udocker-join-*/*/state 2>/dev/null) && [ -n \"$s\" ]"))
                set -- $s; kill -9 $2 $l; wait; touch go
                """,
            member: Self.wait("[ -e go ]") + "; \(run) true 2>rank1.err; echo $? >rank1.rc")
        let lines = member.split(separator: "\n")
        #expect(lines.count == 1 && lines.first?.hasPrefix("Error: the container of this job step is gone") == true, "member: \(member)")
        #expect(rc == "1\n", "member status: \(rc)")
    }

    @Test("--join=yes outside a job step: one line naming what is missing; a wrong value too")
    func joinYesWithoutLauncher() async throws {
        let box = try sandbox("join-yes")
        _ = try await box.pullAndCreate(box.env.image("mpi-openmpi"), name: "mpi")
        let r = try await box.run(["--join=yes", "mpi", "true"])
        expectOneLineError(r, mentioning: ["--join=yes", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_JOB_ID"])
        let bad = try await box.run(["--join=maybe", "mpi", "true"])
        expectOneLineError(bad, mentioning: ["--join", "maybe"])
        // With the variables of a (one-rank) step it runs.
        let step = ["OMPI_COMM_WORLD_LOCAL_SIZE": "1", "PMIX_NAMESPACE": "e2e-join-yes"]
        let ok = try await box.run(["--nobanner", "--join=yes", "mpi", "readlink", "/proc/self/ns/user"], environment: step)
        expectSuccess(ok)
    }
}
