import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// What `verify --all` found: one line per problem, and whether `--repair` removed it.
public struct VerifyReport: Sendable {
    public struct Finding: Sendable, Equatable {
        public var message: String
        /// `--repair` removed the untrusted object (false: reported only, or not asked to repair).
        public var repaired: Bool
    }
    public var findings: [Finding] = []
    public var blobsChecked = 0
    public var imagesChecked = 0
    public var containersChecked = 0
    /// Problems that remain after this run (all of them without `--repair`).
    public var remaining: Int { findings.filter { !$0.repaired }.count }
}

extension LocalRepository {
    /// `verify --all [--repair]`: checks the whole repository under the exclusive repository lock.
    ///
    /// * every blob in `layers/` named by a digest is re-hashed; a mismatch is corrupt (repair:
    ///   removed, and every tag linking to it becomes incomplete, reported for a re-pull);
    /// * every tag: its manifest (or v1 ancestry), config and layer links must resolve to files in
    ///   `layers/` (repair: an incomplete tag is removed, its name reported to pull again);
    /// * every container: ROOT a real directory, `container.json` valid, `execmode` a known mode,
    ///   overlay metadata valid. A container is never removed: its ROOT is the user's data; an
    ///   invalid `execmode` is dropped on repair (the default mode applies again);
    /// * leftovers: abandoned staging directories, `.partial` downloads and temporaries of
    ///   interrupted metadata writes (repair: removed),
    ///   unreferenced blobs older than `grace` (repair: removed), dangling container names
    ///   (repair: removed).
    ///
    /// Nothing outside the repository is read or written: symlinks are never followed out of it.
    public func verifyAll(repair: Bool, grace: TimeInterval = 600) throws -> VerifyReport {
        var report = VerifyReport()
        var findings: [VerifyReport.Finding] = []
        try withLock(cleaning: false) {
            func note(_ message: String, removing path: String? = nil) {
                var done = false
                if repair, let path { done = (try? FileTree.remove(path)) != nil }
                findings.append(.init(message: message, repaired: done))
            }
            let (corrupt, blobs) = verifyBlobs(note)
            report.blobsChecked = blobs
            report.imagesChecked = verifyTags(corrupt: corrupt, repair: repair, note)
            verifyLeftovers(grace: grace, note)
            for id in FileInfo.list(containersDirectory).sorted() where !id.hasPrefix(".") {
                let dir = containerDirectory(id)
                if FileInfo.isSymlink(dir) {
                    if containerID(id) == nil { note("dangling container name: \(id)", removing: dir) }
                    continue
                }
                guard FileInfo.isDirectory(dir) else { note("not a container directory: \(dir)"); continue }
                report.containersChecked += 1
                for problem in containerProblems(id) { note("container \(id): \(problem)") }
                if let invalid = ContainerMetadata.readMode(directory: dir).invalid, !invalid.isEmpty {
                    note("container \(id): invalid execution mode '\(invalid.prefix(16))'", removing: "\(dir)/execmode")
                }
            }
        }
        report.findings = findings
        return report
    }

    /// Re-hashes every digest-named file in `layers/`; returns the names of corrupt ones.
    private func verifyBlobs(_ note: (String, String?) -> Void) -> (corrupt: Set<String>, checked: Int) {
        var corrupt = Set<String>()
        var checked = 0
        for name in FileInfo.list(layersDirectory).sorted() where !name.hasPrefix(".") && !name.hasSuffix(".partial") {
            let p = "\(layersDirectory)/\(name)"
            guard let digest = try? Digest(parsing: name) else { continue }
            guard !FileInfo.isSymlink(p), FileInfo.isRegularFile(p) else {
                corrupt.insert(name)
                note("blob \(name) is not a regular file", p)
                continue
            }
            checked += 1
            guard let actual = try? Self.sha256(ofFile: p) else { corrupt.insert(name); note("blob \(name) cannot be read", nil); continue }
            if actual != digest {
                corrupt.insert(name)
                note("blob \(name) is corrupt: its content hashes to \(actual)", p)
            }
        }
        return (corrupt, checked)
    }

    /// Checks every tag; returns how many.
    private func verifyTags(corrupt: Set<String>, repair: Bool, _ note: (String, String?) -> Void) -> Int {
        let layersReal = BlobEviction.realPath(layersDirectory) ?? layersDirectory
        let listings = listImages()
        for listing in listings {
            var problems: [String] = []
            do { _ = try imageContents(listing.image) } catch { problems.append("\(error)") }
            for (link, _) in imageLayerLinks(listing.image) {
                let name = PathName.lastComponent(link)
                guard let target = BlobEviction.realPath(link),
                    PathName.parent(target) == layersReal
                else {
                    problems.append("\(name) does not link to a file in the repository's layers")
                    continue
                }
                if corrupt.contains(PathName.lastComponent(target)) { problems.append("\(name) is corrupt") }
            }
            guard !problems.isEmpty else { continue }
            let pull = listing.protected ? "" : (repair ? "; removed, pull it again" : "")
            // A protected tag is reported, never removed.
            note("image \(listing.image): \(problems.joined(separator: "; "))\(pull)", listing.protected ? nil : listing.directory)
        }
        return listings.count
    }

    private func verifyLeftovers(grace: TimeInterval, _ note: (String, String?) -> Void) {
        let used = referencedLayerFiles()
        let now = Date().timeIntervalSince1970
        for name in FileInfo.list(layersDirectory).sorted() {
            let p = "\(layersDirectory)/\(name)"
            if name.hasPrefix(".") {
                if FileInfo.isDirectory(p), !FileInfo.isSymlink(p), Self.stagingIsAbandoned(p) {
                    note("abandoned staging directory: \(p)", p)
                } else if Self.temporaryIsAbandoned(p, name: name, now: now, grace: grace) {
                    note("temporary file of an interrupted write: \(p)", p)
                }
            } else if name.hasSuffix(".partial") {
                if BlobIngest.partialIsAbandoned(p) { note("partial download: \(p)", p) }
            } else if !used.contains(name), !FileInfo.isDirectory(p) {
                var st = stat()
                if lstat(p, &st) == 0, now - TimeInterval(st.st_mtim.tv_sec) >= grace { note("unreferenced blob: \(name)", p) }
            }
        }
        for name in FileInfo.list(containersDirectory).sorted() where StagingDirectory.containerPrefixes.contains(where: name.hasPrefix) {
            let p = "\(containersDirectory)/\(name)"
            if FileInfo.isDirectory(p), !FileInfo.isSymlink(p), Self.stagingIsAbandoned(p) { note("abandoned staging directory: \(p)", p) }
        }
    }

    /// What is wrong with a container's metadata (the checks `run` makes before it starts).
    func containerProblems(_ id: String) -> [String] {
        let dir = containerDirectory(id)
        var problems: [String] = []
        if !CloneMetadata.isRealDirectory("\(dir)/ROOT") { problems.append("ROOT is not a directory (remove the container with rm)") }
        if FileInfo.exists("\(dir)/container.json") {
            do { _ = try containerConfigChecked(id) } catch { problems.append("\(error) (its ROOT is kept)") }
        }
        if isOverlayContainer(id) {
            do { _ = try overlayLayout(id) } catch { problems.append("\(error)") }
        }
        return problems
    }
}
