import ArgumentParser
import Engines
import FoundationEssentials
import Store
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

struct InstallCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install udockertools from a tarball, and report the engine tools found on this host",
        discussion: """
            install [--force] [--purge]
            The tarball (udockertools layout: udocker_dir/bin, lib, doc) comes from UDOCKER_TARBALL or the
            config key tarball: local paths or URLs separated by spaces, tried in turn; a URL over plain
            http only to this host, unless insecure connections are allowed (the general option). Its
            SHA-256 is always shown, and checked when UDOCKER_TARBALL_SHA256 or tarball_sha256 is set.
            Without a tarball nothing is installed: the engines use the host's tools (listed).
            """)
    @Flag(name: .customLong("force"), help: "install even if the installed version is current, or the tarball older") var force = false
    @Flag(name: .customLong("purge"), help: "delete everything in bin/, lib/ and doc/ of the repository first") var purge = false

    func execute(_ context: CommandContext) async throws -> Int32 {
        let repo = context.repository
        let c = context.configuration
        if purge {
            try repo.purgeTools()
            context.messages.info("purged \(repo.binDirectory), \(repo.libDirectory) and \(repo.docDirectory)")
        }
        let tarballs = c["tarball"].split(whereSeparator: \.isWhitespace).map(String.init)
        let minimum = c["tarball_release"]
        if tarballs.isEmpty {
            context.messages.info("no udockertools tarball configured (UDOCKER_TARBALL): the engines use the tools found on this host")
        } else if !force, let v = repo.toolsVersion, LocalRepository.compareVersions(v, minimum) >= 0 {
            context.messages.info("udockertools \(v) already installed in \(repo.libDirectory) (--force reinstalls)")
        } else {
            try await install(tarballs, minimum: minimum, context: context)
        }
        for t in EngineTools.locate(environment: ModeResolver(context: context).engineEnvironment()) {
            print("\(t.tool): \(t.path ?? "not found") (\(t.modes))")
        }
        return 0
    }

    func install(_ tarballs: [String], minimum: String, context: CommandContext) async throws {
        let sha = context.configuration["tarball_sha256"]
        var problems: [String] = []
        for entry in tarballs {
            var path = entry.hasPrefix("file://") ? String(entry.dropFirst(7)) : entry
            var downloaded = false
            if path.contains("://") {
                do { path = try await URLDownload.fetch(entry, context: context); downloaded = true } catch {
                    problems.append("\(error)"); continue
                }
            }
            defer { if downloaded { unlink(path) } }
            do {
                context.messages.info("installing udockertools from \(entry)")
                let (version, names, digest) = try context.repository.installTools(
                    tarball: path, sha256: sha.isEmpty ? nil : sha,
                    minimumVersion: minimum, force: force)
                context.messages.info(
                    "installed udockertools \(version): \(names.count) file(s) from a tarball with SHA-256 \(digest)"
                        + (sha.isEmpty ? " (set UDOCKER_TARBALL_SHA256 to require it)" : " (as configured)"))
                return
            } catch {
                problems.append("\(error)")
            }
        }
        throw CommandFailure("udockertools not installed: " + problems.joined(separator: "; "))
    }
}
