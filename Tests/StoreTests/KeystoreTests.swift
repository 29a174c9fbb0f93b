import Foundation
@testable import Store
import UDockerSystem
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// udocker's keystore: atomic replacement, old content blanked only afterwards, refusals.
@Suite struct KeystoreTests {
    func mode(_ p: String) -> mode_t {
        var st = stat()
        return stat(p, &st) == 0 ? st.st_mode & 0o7777 : 0
    }

    @Test func replacementKeepsEveryLoginAndBlanksTheOldFileAfterwards() throws {
        let dir = try TemporaryDirectory()
        let ks = Keystore(path: dir.sub("u/keystore"))
        try ks.store(registry: "quay.io", username: "a", password: "first")
        #expect(mode(dir.sub("u")) == 0o700)
        // A second name for the old inode: what a replacement leaves of the old content.
        #expect(link(ks.path, dir.sub("old")) == 0)
        let oldSize = try #require(FileInfo.size(dir.sub("old")))
        try ks.store(registry: "127.0.0.1:5000", username: "b", password: "second")
        #expect(try ks.authorization(registry: "quay.io") == Data("a:first".utf8).base64EncodedString())
        #expect(try ks.authorization(registry: "127.0.0.1:5000") == Data("b:second".utf8).base64EncodedString())
        let old = try #require(AtomicFile.read(dir.sub("old")))
        #expect(old.count == oldSize && old.allSatisfy { $0 == 0x20 }, "the replaced keystore is blanked")
        #expect(mode(ks.path) == 0o600)
        let text = try #require(AtomicFile.readString(ks.path))
        #expect(text.contains("\"https://quay.io\"") && text.contains("\"https://127.0.0.1:5000\""), "\(text)")
    }

    @Test func unsafeKeystoresAreRefused() throws {
        let dir = try TemporaryDirectory()
        let ks = Keystore(path: dir.sub("k/keystore"))
        try ks.store(registry: nil, username: "a", password: "p")
        chmod(ks.path, 0o640)
        #expect(throws: StoreError.self) { try ks.store(registry: nil, username: "a", password: "q") }
        chmod(ks.path, 0o600)
        chmod(dir.sub("k"), 0o777)
        #expect(throws: StoreError.self) { try ks.remove(registry: nil) }
        chmod(dir.sub("k"), 0o700)
        #expect(try ks.remove(registry: nil))
        try ks.erase()
        #expect(!FileManager.default.fileExists(atPath: ks.path))
    }
}
