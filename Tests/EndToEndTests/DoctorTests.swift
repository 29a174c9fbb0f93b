import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `udocker doctor` and the automatic engine fallback (N1 → R1 → P1 → F3), on this host and on
/// simulated hosts where engines are blocked: user namespaces disabled (a user namespace whose
/// `user.max_user_namespaces` is 0), a seccomp filter refusing `unshare` and `ptrace`, a PATH
/// without proot. The binary runs as the unprivileged user throughout.
@Suite("E2E doctor and engine fallback", e2eEnabled)
struct DoctorTests {
    /// `doctor --json` as the test user (optionally through the blocking launcher).
    static func report(
        _ r: CommandResult, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> (findings: [String: [String: Any]], automatic: String?) {
        let json = try jsonObject(r, sourceLocation: sourceLocation)
        let list = try #require(json["findings"] as? [[String: Any]], "\(r)", sourceLocation: sourceLocation)
        var byCheck: [String: [String: Any]] = [:]
        for f in list { if let c = f["check"] as? String { byCheck[c] = f } }
        return (byCheck, json["automatic"] as? String)
    }

    /// The host's C library as confstr(_CS_GNU_LIBC_VERSION) names it: "glibc 2.36".
    static func hostGlibc() -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        _ = confstr(Int32(_CS_GNU_LIBC_VERSION), &buffer, buffer.count)
        return String(cString: buffer)
    }

    static func status(_ f: [String: [String: Any]], _ check: String) -> String? { f[check]?["status"] as? String }
    static func summary(_ f: [String: [String: Any]], _ check: String) -> String { f[check]?["summary"] as? String ?? "" }

    @Test("doctor on this host: every engine reported, N1 chosen, text and JSON agree")
    func thisHost() async throws {
        let box = try sandbox()
        let text = try await box.udocker(["doctor"])
        expectSuccess(text)
        for check in ["N1", "N1 overlay", "P1/P2", "F1-F4", "R1-R3", "S1", "repository"] {
            #expect(
                text.stdoutLines.contains { $0.hasPrefix("✔ \(check) ") || $0.hasPrefix("✘ \(check) ") || $0.hasPrefix("! \(check) ") },
                "no line for \(check):\n\(text)")
        }
        #expect(text.stdoutLines.contains { $0.hasPrefix("✔ N1 ") }, "\(text)")
        // The C library and kernel found (README, "Supported systems"): what a cluster admin asks first.
        #expect(text.stdoutLines.first?.hasPrefix("✔ host ") == true && text.stdout.contains("\(Self.hostGlibc()), Linux "), "\(text)")
        #expect(text.stdout.contains("overlayfs in a user namespace (--storage=overlay): yes"), "\(text)")
        #expect(text.stdoutLines.contains { $0.hasPrefix("✔ P1/P2 ") && $0.contains("proot and ptrace work") }, "\(text)")
        #expect(text.stdout.contains("proot 5.") && text.stdout.contains("at /usr/bin/proot (from PATH)"), "\(text)")
        #expect(text.stdout.contains("runc 1.") && text.stdout.contains("libfakechroot at /usr/lib/"), "\(text)")
        #expect(
            text.stdoutLines.last?.hasPrefix("containers with no execution mode run N1 here (order N1 → R1 → P1 → F3)") == true, "\(text)")
        // Doctor does not create the repository.
        #expect(!box.exists(box.udockerDir), "doctor created \(box.udockerDir)")

        let json = try await box.udocker(["doctor", "--json"])
        expectSuccess(json)
        let (f, automatic) = try Self.report(json)
        #expect(automatic == "N1")
        #expect(Self.status(f, "N1") == "ok" && Self.status(f, "P1/P2") == "ok" && Self.status(f, "F1-F4") == "ok")
        #expect(Self.status(f, "S1") == "failed" && (f["S1"]?["fix"] as? String)?.contains("apptainer") == true, "\(json)")
        #expect(["ok", "warning"].contains(Self.status(f, "repository")), "\(json)")
    }

    @Test("a PATH without proot: P1/P2 fails with the fix, N1 still chosen")
    func pathWithoutProot() async throws {
        let box = try sandbox()
        try box.makeUserDirectory("\(box.scratch)/bin")
        let r = try await box.udocker(["doctor", "--json"], environment: ["PATH": "\(box.scratch)/bin"])
        expectSuccess(r)
        let (f, automatic) = try Self.report(r)
        #expect(Self.status(f, "P1/P2") == "failed" && Self.summary(f, "P1/P2").hasPrefix("proot not found"), "\(r)")
        #expect((f["P1/P2"]?["fix"] as? String)?.contains("apt-get install proot") == true, "\(r)")
        #expect(Self.status(f, "R1-R3") == "failed" && Self.summary(f, "R1-R3").contains("runc not found"), "\(r)")
        #expect(automatic == "N1")
    }

    @Test(
        "user namespaces disabled (max_user_namespaces=0): doctor says so; a container with no mode falls back to P1 and keeps it",
        .enabled(if: getuid() == 0 && BlockingLauncher.compiler != nil, "needs root (to build the user namespace) and a C compiler"))
    func userNamespacesDisabled() async throws {
        let box = try sandbox()
        let launcher = try BlockingLauncher.build(in: box)
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")

        let doctor = try await launcher.run(box, ["--userns0"], ["doctor", "--json"])
        expectSuccess(doctor)
        let (f, automatic) = try Self.report(doctor)
        #expect(Self.status(f, "N1") == "failed", "\(doctor)")
        #expect(Self.summary(f, "N1") == "user namespaces are disabled: user.max_user_namespaces=0", "\(doctor)")
        #expect((f["N1"]?["fix"] as? String)?.contains("user.max_user_namespaces") == true)
        #expect(Self.status(f, "R1-R3") == "failed" && Self.summary(f, "R1-R3").contains("needs user namespaces"), "\(doctor)")
        #expect(Self.status(f, "N1 overlay") == "failed")
        #expect(Self.status(f, "P1/P2") == "ok", "\(doctor)")
        #expect(automatic == "P1")

        // The N1 → P1 fallback: one warning line with the reasons, the command's output and
        // status, and the choice recorded.
        let run = try await launcher.run(box, ["--userns0"], ["run", "--nobanner", "bb", "sh", "-c", "echo fallback-ok; exit 3"])
        #expect(run.status == 3, "\(run)")
        #expect(run.stdout == "fallback-ok\n", "\(run)")
        let warnings = run.stderrLines.filter { $0.hasPrefix("Warning:") }
        #expect(warnings.count == 1, "\(run)")
        #expect(warnings.first?.contains("N1: user namespaces are disabled: user.max_user_namespaces=0") == true, "\(run)")
        #expect(warnings.first?.contains("R1: rootless runc needs user namespaces too") == true, "\(run)")
        #expect(warnings.first?.contains("running with P1") == true, "\(run)")
        #expect(box.readFile("\(box.containerDirectory(id))/execmode")?.trimmingCharacters(in: .whitespacesAndNewlines) == "P1")
        // Recorded: the next run goes straight to P1, with no warning.
        let again = try await launcher.run(box, ["--userns0"], ["run", "--nobanner", "bb", "echo", "again"])
        expectSuccess(again)
        #expect(again.stdout == "again\n" && !again.stderr.contains("Warning:"), "\(again)")
    }

    @Test(
        "user namespaces disabled and no proot on PATH: the fallback reaches F3",
        .enabled(if: getuid() == 0 && BlockingLauncher.compiler != nil, "needs root (to build the user namespace) and a C compiler"))
    func fallbackToFakechroot() async throws {
        let box = try sandbox()
        let launcher = try BlockingLauncher.build(in: box)
        let id = try await box.pullAndCreate(box.env.debian, name: "deb")
        try box.makeUserDirectory("\(box.scratch)/bin")
        let env = ["PATH": "\(box.scratch)/bin"]
        let doctor = try await launcher.run(box, ["--userns0"], ["doctor", "--json"], environment: env)
        expectSuccess(doctor)
        #expect(try Self.report(doctor).automatic == "F3", "\(doctor)")

        let run = try await launcher.run(box, ["--userns0"], ["run", "--nobanner", "deb", "cat", "/etc/debian_version"], environment: env)
        expectSuccess(run)
        #expect(run.stdout.hasPrefix("12"), "\(run)")
        let warnings = run.stderrLines.filter { $0.hasPrefix("Warning:") }
        #expect(warnings.count == 1 && warnings[0].contains("P1: proot not found") && warnings[0].contains("running with F3"), "\(run)")
        #expect(box.readFile("\(box.containerDirectory(id))/execmode")?.trimmingCharacters(in: .whitespacesAndNewlines) == "F3")
    }

    @Test(
        "a seccomp filter refusing unshare and ptrace: doctor names it; the fallback skips N1, R1 and P1 for F3",
        .enabled(if: BlockingLauncher.compiler != nil, "needs a C compiler for the seccomp launcher"))
    func seccompFilter() async throws {
        let box = try sandbox()
        let launcher = try BlockingLauncher.build(in: box)
        let id = try await box.pullAndCreate(box.env.debian, name: "deb")
        let doctor = try await launcher.run(box, ["--seccomp=unshare,ptrace"], ["doctor", "--json"])
        expectSuccess(doctor)
        let (f, automatic) = try Self.report(doctor)
        #expect(Self.status(f, "N1") == "failed" && Self.summary(f, "N1").contains("refused by a seccomp filter"), "\(doctor)")
        #expect(
            Self.status(f, "P1/P2") == "failed" && Self.summary(f, "P1/P2").contains("ptrace is refused by a seccomp filter"), "\(doctor)")
        #expect(automatic == "F3", "\(doctor)")

        let run = try await launcher.run(box, ["--seccomp=unshare,ptrace"], ["run", "--nobanner", "deb", "sh", "-c", "echo seccomp-ok"])
        expectSuccess(run)
        #expect(run.stdout == "seccomp-ok\n", "\(run)")
        let warnings = run.stderrLines.filter { $0.hasPrefix("Warning:") }
        #expect(warnings.count == 1 && warnings[0].contains("seccomp") && warnings[0].contains("running with F3"), "\(run)")
        #expect(box.readFile("\(box.containerDirectory(id))/execmode")?.trimmingCharacters(in: .whitespacesAndNewlines) == "F3")
    }
}

/// A small C launcher built by the tests: `--userns0` (as root) enters a user namespace with an
/// identity map where `user.max_user_namespaces` is 0 and drops to the test user; `--seccomp=`
/// installs a filter that refuses the listed system calls with EPERM. Then it execs the command.
struct BlockingLauncher {
    let path: String

    static let compiler: String? = ["/usr/bin/cc", "/usr/bin/gcc", "/opt/swift/usr/bin/clang"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    static func build(in box: E2ESandbox) throws -> BlockingLauncher {
        let dir = box.path + "/launcher"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try source.write(toFile: dir + "/blockhost.c", atomically: true, encoding: .utf8)
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: try #require(compiler))
        cc.arguments = ["-O", "-Wall", "-o", dir + "/blockhost", dir + "/blockhost.c"]
        try cc.run()
        cc.waitUntilExit()
        try #require(cc.terminationStatus == 0, "cannot compile the blocking launcher")
        chmod(dir, 0o755)
        chmod(dir + "/blockhost", 0o755)
        return BlockingLauncher(path: dir + "/blockhost")
    }

    /// `udocker <args>` through the launcher; with `--userns0` the launcher starts as root and
    /// drops to the test user itself, otherwise it runs as the test user.
    func run(
        _ box: E2ESandbox, _ options: [String], _ args: [String], environment extra: [String: String] = [:]
    ) async throws -> CommandResult {
        var command = box.command(environment: extra)
        var opts = options
        if options.contains("--userns0") {
            let (uid, gid) = try UserCommand.ids(of: box.env.user)
            opts += ["--uid=\(uid)", "--gid=\(gid)"]
            command.user = nil
        }
        return try await command.run(path, opts + ["--", box.env.binary] + args)
    }

    static let source = #"""
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <grp.h>
        #include <linux/audit.h>
        #include <linux/filter.h>
        #include <linux/seccomp.h>
        #include <sched.h>
        #include <signal.h>
        #include <stddef.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/prctl.h>
        #include <sys/syscall.h>
        #include <sys/wait.h>
        #include <unistd.h>

        static void die(const char *what) { fprintf(stderr, "blockhost: %s: %s\n", what, strerror(errno)); _exit(120); }

        static void write_file(const char *path, const char *text) {
            int fd = open(path, O_WRONLY);
            if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die(path);
            close(fd);
        }

        static void install_seccomp(const char *list) {
            struct sock_filter f[16];
            int n = 0;
            f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
            f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
            f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
            f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
            if (strstr(list, "unshare")) {
                f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 0, 1);
                f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
            }
            if (strstr(list, "ptrace")) {
                f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ptrace, 0, 1);
                f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
            }
            f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
            struct sock_fprog prog = { .len = (unsigned short)n, .filter = f };
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs");
            if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) die("seccomp");
        }

        int main(int argc, char **argv) {
            int userns0 = 0; const char *seccomp = NULL; uid_t uid = 0; gid_t gid = 0;
            int i = 1;
            for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
                if (strcmp(argv[i], "--userns0") == 0) userns0 = 1;
                else if (strncmp(argv[i], "--seccomp=", 10) == 0) seccomp = argv[i] + 10;
                else if (strncmp(argv[i], "--uid=", 6) == 0) uid = (uid_t)atoi(argv[i] + 6);
                else if (strncmp(argv[i], "--gid=", 6) == 0) gid = (gid_t)atoi(argv[i] + 6);
                else { fprintf(stderr, "blockhost: unknown option %s\n", argv[i]); return 120; }
            }
            if (i + 1 >= argc) { fprintf(stderr, "blockhost: no command\n"); return 120; }
            char **cmd = argv + i + 1;
            if (userns0) {
                int go[2], ready[2];
                if (pipe(go) || pipe(ready)) die("pipe");
                pid_t pid = fork();
                if (pid < 0) die("fork");
                if (pid > 0) {
                    char b, path[64];
                    close(go[0]); close(ready[1]);
                    if (read(ready[0], &b, 1) != 1) { waitpid(pid, NULL, 0); return 120; }
                    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid); write_file(path, "0 0 4294967295\n");
                    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid); write_file(path, "0 0 4294967295\n");
                    if (write(go[1], "g", 1) != 1) die("pipe");
                    int st;
                    while (waitpid(pid, &st, 0) < 0) if (errno != EINTR) die("waitpid");
                    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
                    return WEXITSTATUS(st);
                }
                close(go[1]); close(ready[0]);
                if (unshare(CLONE_NEWUSER) != 0) die("unshare");
                if (write(ready[1], "r", 1) != 1) die("pipe");
                char b;
                if (read(go[0], &b, 1) != 1) die("wait for the map");
                write_file("/proc/sys/user/max_user_namespaces", "0\n");
                if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) die("drop to the user");
            }
            if (seccomp) install_seccomp(seccomp);
            execvp(cmd[0], cmd);
            die(cmd[0]);
        }
        """#
}
