package pgtest

import "syscall"

// diesWithParent has the kernel send the server SIGQUIT (immediate shutdown) when the test
// process exits without stopping it.
func diesWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGQUIT }
