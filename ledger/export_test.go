package ledger

// KeyRecheck is keyRecheck, for the external tests.
const KeyRecheck = keyRecheck

// WaitBlobLocks waits until the attachments tied so far have been through lockBlob.
func (l *Ledger) WaitBlobLocks() {
	if l.blobLocks != nil {
		l.blobLocks.wait()
	}
}

// StaleMark is staleMark, for the external tests.
const StaleMark = staleMark
