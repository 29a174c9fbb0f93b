import Foundation
import Store
import TestSupport
import Testing
import UDockerSystem

#if canImport(Glibc)
import Glibc
#endif

/// Cases 41 and 44 on the Store side: installed tools are recorded by SHA-256 and checked, with a
/// cache that a modification cannot fool; a repository others can write is refused.
@Suite struct ToolTrustStoreTests {
    @Test func aModifiedToolIsRefusedEvenWhenSizeAndMtimeAreKept() throws {
        let tmp = try TemporaryDirectory()
        let tool = tmp.sub("proot-x86_64")
        try AtomicFile.write("#!/bin/sh\necho original\n", to: tool, mode: 0o755)
        #expect(symlink("proot-x86_64", tmp.sub("proot")) == 0)
        try ToolChecksums.record(["proot-x86_64", "proot"], in: tmp.path)
        #expect(ToolChecksums.refusal(path: tool) == nil)
        #expect(ToolChecksums.refusal(path: tmp.sub("proot")) == nil)
        #expect(FileInfo.isRegularFile(tmp.sub(ToolChecksums.cacheName)), "a verified tool is remembered")
        #expect(ToolChecksums.refusal(path: tool) == nil)  // from the cache
        // Same size, mtime set back: only the ctime tells, and the cache must not hide it.
        var before = stat()
        #expect(stat(tool, &before) == 0)
        let fd = open(tool, O_WRONLY)
        #expect(pwrite(fd, [UInt8(ascii: "O")], 1, 15) == 1)  // "echo original" -> "echo Original"
        close(fd)
        var times = [before.st_atim, before.st_mtim]
        #expect(utimensat(AT_FDCWD, tool, &times, 0) == 0)
        let line = try #require(ToolChecksums.refusal(path: tool))
        #expect(line.contains(tool) && line.contains("udocker install --force") && !line.contains("\n"))
        #expect(ToolChecksums.refusal(path: tmp.sub("proot")) != nil, "the symlinked name is checked too")
        // A tool the record does not name (put there by hand) is not hashed.
        try AtomicFile.write("#!/bin/sh\n", to: tmp.sub("runc"), mode: 0o755)
        #expect(ToolChecksums.refusal(path: tmp.sub("runc")) == nil)
    }

    @Test func installRecordsWhatItInstalled() throws {
        let tmp = try TemporaryDirectory()
        let src = tmp.sub("src/udocker_dir")
        for d in ["bin", "lib", "doc"] { try FileInfo.makeDirectories("\(src)/\(d)") }
        try AtomicFile.write("#!/bin/sh\n", to: "\(src)/bin/proot-x86_64", mode: 0o755)
        try AtomicFile.write("1.2.11\n", to: "\(src)/lib/VERSION")
        try AtomicFile.write("not ours\n", to: "\(src)/bin/\(ToolChecksums.recordName)")
        #expect(sh("cd \(tmp.sub("src")) && tar -cf ../tools.tar udocker_dir") == 0)
        let repo = LocalRepository(topDirectory: tmp.sub("repo"))
        try repo.create()
        _ = try repo.installTools(tarball: tmp.sub("tools.tar"), sha256: nil, minimumVersion: "1.2.11", force: false)
        let record = try #require(AtomicFile.readString("\(repo.binDirectory)/\(ToolChecksums.recordName)"))
        #expect(record.hasSuffix("  proot-x86_64\n") && record.split(separator: "\n").count == 1)
        #expect(ToolChecksums.refusal(path: "\(repo.binDirectory)/proot-x86_64") == nil)
        try AtomicFile.write("#!/bin/sh\nevil\n", to: "\(repo.binDirectory)/proot-x86_64", mode: 0o755)
        #expect(ToolChecksums.refusal(path: "\(repo.binDirectory)/proot-x86_64") != nil)
    }

    @Test(arguments: [(0o777, true), (0o1777, false), (0o757, true), (0o700, false), (0o755, false)])
    func repositoryWritableByOthers(mode: Int, refused: Bool) throws {
        let tmp = try TemporaryDirectory()
        let repo = LocalRepository(topDirectory: tmp.sub("repo"))
        try repo.create()
        #expect(chmod(repo.topDirectory, mode_t(mode)) == 0)
        let reason = repo.unsafeOwnershipReason
        #expect((reason != nil) == refused, "\(String(mode, radix: 8)): \(reason ?? "accepted")")
        if let reason { #expect(reason.contains("chmod go-w") && !reason.contains("\n")) }
    }

    @Test(.enabled(if: geteuid() == 0, "giving the repository to root and to another user needs root"))
    func repositoryOwnedByAnotherUserIsRefusedRootsIsNot() throws {
        let tmp = try TemporaryDirectory()
        let repo = LocalRepository(topDirectory: tmp.sub("repo"))
        try repo.create()
        #expect(chmod(repo.topDirectory, 0o755) == 0)
        #expect(chown(repo.topDirectory, 0, 0) == 0)
        #expect(repo.unsafeOwnershipReason == nil, "a root-owned repository (central, read-only for users) stays usable")
        #expect(chown(repo.topDirectory, 4242, 4242) == 0)
        let reason = try #require(repo.unsafeOwnershipReason)
        #expect(reason.contains("owned by uid 4242") && !reason.contains("\n"))
    }
}
