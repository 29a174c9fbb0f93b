import ArgumentParser
import Engines
import Registry
import FoundationEssentials
import Store
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

struct InstallCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install udockertools (from udocker's URLs or UDOCKER_TARBALL), and report the engine tools found on this host",
        discussion: """
            install [--force] [--purge]
            The tarball (udockertools layout: udocker_dir/bin, lib, doc) comes from UDOCKER_TARBALL or the
            config key tarball: local paths or URLs separated by spaces, tried in turn; by default udocker
            1.3.17's published https URLs (udocker version shows them). A URL over plain http only to
            this host, unless insecure connections are allowed (the general option). Its SHA-256 is
            always shown, and checked when UDOCKER_TARBALL_SHA256 or tarball_sha256 is set. Offline,
            point UDOCKER_TARBALL at a local copy. With tarball set empty nothing is installed. The
            engines use the host's tools where the repository has none (listed).
            """)
    @Flag(name: .customLong("force"), help: "install even if the installed version is current, or the tarball older") var force = false
    @Flag(name: .customLong("purge"), help: "delete everything in bin/, lib/ and doc/ of the repository first (once a tarball is accepted)")
    var purge = false

    func execute(_ context: CommandContext) async throws -> Int32 {
        let repo = context.repository
        let c = context.configuration
        let tarballs = c["tarball"].split(whereSeparator: \.isWhitespace).map(String.init)
        let minimum = c["tarball_release"]
        // With a tarball to install, --purge empties the directories only once one is accepted:
        // a failed download or a refused tarball leaves the installed tools as they were.
        if purge && tarballs.isEmpty {
            try repo.purgeTools()
            context.messages.info("purged \(repo.binDirectory), \(repo.libDirectory) and \(repo.docDirectory)")
        }
        if tarballs.isEmpty {
            context.messages.info("no udockertools tarball configured (UDOCKER_TARBALL): the engines use the tools found on this host")
        } else if !force, !purge, let v = repo.toolsVersion, LocalRepository.compareVersions(v, minimum) >= 0 {
            context.messages.info("udockertools \(v) already installed in \(repo.libDirectory) (--force reinstalls)")
        } else {
            try await install(tarballs, minimum: minimum, context: context)
        }
        for t in EngineTools.locate(environment: ModeResolver(context: context).engineEnvironment()) {
            print("\(t.tool): \(t.path ?? "not found") (\(t.modes))")
        }
        return 0
    }

    /// udocker's install loop: each source in turn (udocker shuffles them; here the order given
    /// is kept, so a local mirror listed first is tried first), the first that installs wins.
    /// Up to `installretry` rounds, but only sources whose failure may pass (the server was
    /// reached, then failed) are tried again: an offline host fails after one round.
    func install(_ tarballs: [String], minimum: String, context: CommandContext) async throws {
        let rounds = min(10, max(1, Int(context.configuration["installretry"].trimmed()) ?? 3))
        var pending = tarballs
        var problems: [String: String] = [:]
        var unreachable: String?
        for round in 1...rounds {
            if round > 1 {
                context.messages.info("trying again (\(round) of \(rounds)): \(pending.joined(separator: " "))")
                try await Task.sleep(nanoseconds: UInt64(round - 1) * 1_000_000_000)
            }
            var again: [String] = []
            for (n, entry) in pending.enumerated() {
                guard let failure = try await attempt(entry, minimum: minimum, context: context) else { return }
                problems[entry] = failure.problem
                if failure.download { unreachable = unreachable ?? entry }
                if failure.mayPass { again.append(entry) }
                if n + 1 < pending.count { context.messages.info("\(failure.problem); trying the next source") }
            }
            pending = again
            if pending.isEmpty { break }
        }
        var message = "udockertools not installed: " + tarballs.compactMap { problems[$0] }.joined(separator: "; ")
        if let unreachable {
            let name = unreachable.split(separator: "/").last.map(String.init) ?? "the tarball"
            message +=
                " (to install without network access: fetch \(name) elsewhere, then UDOCKER_TARBALL=/path/to/\(name) udocker install)"
        }
        throw CommandFailure(message)
    }

    /// One source: downloaded when a URL, then installed. nil when installed, else why not,
    /// whether the download failed, and whether trying again may help.
    func attempt(
        _ entry: String, minimum: String, context: CommandContext
    ) async throws -> (problem: String, download: Bool, mayPass: Bool)? {
        var path = entry.hasPrefix("file://") ? String(entry.dropFirst(7)) : entry
        let remote = path.contains("://")
        if remote {
            do { path = try await URLDownload.fetch(entry, context: context) } catch let e as URLDownload.Failure {
                let failure = e.cause as? DownloadFailure
                return ("\(e)", failure != nil, failure?.mayPass ?? false)
            }
        }
        defer { if remote { unlink(path) } }
        let sha = context.configuration["tarball_sha256"]
        do {
            context.messages.info("installing udockertools from \(entry)")
            let (version, names, digest) = try context.repository.installTools(
                tarball: path, shownAs: remote ? entry : nil, sha256: sha.isEmpty ? nil : sha,
                minimumVersion: minimum, force: force, purge: purge)
            if purge {
                let repo = context.repository
                context.messages.info("purged \(repo.binDirectory), \(repo.libDirectory) and \(repo.docDirectory)")
            }
            context.messages.info(
                "installed udockertools \(version): \(names.count) file(s) from a tarball with SHA-256 \(digest)"
                    + (sha.isEmpty ? " (set UDOCKER_TARBALL_SHA256 to require it)" : " (as configured)"))
            return nil
        } catch {
            return ("\(error)", false, false)
        }
    }
}
