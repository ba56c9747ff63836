// Package safego runs background goroutines under recovery, so that a panic in one of them (a bug in s3ftp, in
// the AWS SDK or in a backend) fails the operation the goroutine worked for instead of ending the process and
// with it every mount's uploads and every FTP session.
//
// # The rule
//
// Every goroutine that s3mount, upload, cache and ftpfront start runs its work through Panics.Call or Panics.Go,
// or recovers in a deferred function of its own that hands the value to Panics.Recovered (an FTP session or
// transfer, which must answer the client from there). Only goroutines that do nothing but wait for a
// sync.WaitGroup and close a channel are exempt: they cannot panic. A recovered panic
//
//   - is logged as one ERROR line naming what panicked, with the panic value ("panic") and the stack of the
//     panicking goroutine ("stack");
//   - is counted once on the *Panics passed in (s3mount reports its counter as Mounted.Panics, ftpfront as
//     Server.Panics), whether Call, Go or Recovered saw it;
//   - becomes, with Call, a *PanicError that the owner of the goroutine handles as any other failure of that
//     operation: an upload fails and is aborted, a cache block fails, a transfer answers 451.
//
// # What recovery cannot repair
//
// A panic unwinds only the frames of its own goroutine: deferred calls run, a plain Unlock after the panicking
// call does not. Code run under Call therefore releases locks with defer or holds them only around code that
// cannot panic, and the owner frees what it reserved for the goroutine (budget bytes, pinned blocks, slots,
// WaitGroup counts) in its own defers or after Call returns, so that the accounting stays exact after a panic.
//
// A *PanicError never unwraps to the panic value: an error classified as "not found" or "canceled" would let a
// panic pass for an ordinary outcome (a retry, ENOENT). It maps to EIO, 451 and the like.
package safego
