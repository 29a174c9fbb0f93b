/// The content store / content client split (as in apple/containerization's `ContentStore` and
/// `ContentClient`): a store hands out one ingest session per blob — it owns where the blob goes,
/// the partial file, the lock and publication — and a client (the registry client, an archive
/// reader) only streams bytes into it, verifies size and digest, and then commits or discards.
public protocol BlobStore: Sendable {
    /// A writer for `blob`, or nil when the store already holds it. `onWait` is called once if
    /// another process is writing the same blob and this call waits for it.
    func writer(for blob: Descriptor, onWait: @Sendable () -> Void) async throws -> (any BlobWriter)?
}

/// One blob being written. Errors from the file system are thrown as they are (a `SystemError`
/// with its errno); the client decides what is retried.
public protocol BlobWriter: AnyObject {
    /// Bytes already written (an interrupted download being resumed).
    func currentSize() throws -> Int64
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws
    /// Drops everything written so far (the download restarts from 0).
    func truncate() throws
    /// Hands the first `length` bytes back in chunks (to hash a resumed prefix).
    func readPrefix(_ length: Int64, _ body: (UnsafeRawBufferPointer) -> Void) throws
    /// Publishes the verified blob under its digest; never replaces one published first.
    func commit(size: Int64) throws
    /// Removes what was written (its content is known bad, or there is nothing in it).
    func discard()
    /// Ends the session; an unfinished blob is kept for a later resume.
    func close()
    /// One line for the user when the disk or quota filled up while writing `blob` (after `discard`).
    func noSpaceMessage(blob: String, size: Int64) -> String
}
