import OCI

// Image references are parsed in OCI (the distribution-spec grammar, with no network code, so the
// fuzz target links only OCI); the registry's callers keep using the names through Registry.
public typealias ImageReference = OCI.ImageReference
public typealias ReferenceError = OCI.ReferenceError
