package dingtalk

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/durable"
	"golang.org/x/crypto/chacha20poly1305"
)

// MediaJob is one attachment still to be fetched: the message it belongs to (already sealed)
// and how to fetch it.
type MediaJob struct {
	ID           string               `json:"id"` // lowercase hex, derived from the message identity, index and code
	Message      capture.Identity     `json:"message"`
	Conversation capture.Conversation `json:"conversation,omitzero"`
	Attachment   int                  `json:"attachment"` // index in Message.Attachments
	DownloadCode string               `json:"download_code"`
	RobotCode    string               `json:"robot_code"`
	Name         string               `json:"name,omitempty"`
	MediaType    string               `json:"media_type,omitempty"`
	Added        time.Time            `json:"added"`
	Rounds       int                  `json:"rounds"` // failure rounds sealed so far
	LastError    string               `json:"last_error,omitempty"`
}

// A MediaJournal durably remembers attachment fetches that are not finished, so that they
// resume after a restart. The source writes a job after its message is sealed and before the
// message is acknowledged, and deletes it once the fetch result is sealed. Implementations must
// be safe for concurrent use; NewDirJournal is one, and a caller may keep jobs in its own
// database instead.
type MediaJournal interface {
	// Put creates or replaces the job with job.ID; it returns once the job is durable.
	Put(ctx context.Context, job MediaJob) error
	// Delete removes the job; it returns once the removal is durable. Deleting a job that is not
	// there is not an error.
	Delete(ctx context.Context, id string) error
	// List returns every job. Jobs it cannot read are reported in the error (errors.Join) and
	// left in place; the jobs it could read are returned beside that error.
	List(ctx context.Context) ([]MediaJob, error)
}

// DirJournal is a MediaJournal with one small encrypted file per pending job in a directory,
// so that nothing of a message (file names, conversation titles, download codes) is on disk in
// plain text at any moment, pending or failing fetches included.
//
// Each job is the file <id>.job, holding
//
//	version (1 byte, 1) ‖ nonce (24 random bytes) ‖ XChaCha20-Poly1305 sealed JSON of the job
//
// under the 32-byte key given to NewDirJournal, with the version byte and the job id as
// associated data, so that a file renamed to another job's name, or cut, does not decrypt.
// Files are replaced atomically and durably (internal/durable: temporary file, sync, rename,
// directory sync), so a crash leaves either the old job or the new one. A file that does not
// decrypt or parse is reported by List and left in place for an operator to look at.
//
// Jobs written in plain JSON by earlier versions (<id>.json) are read once by List, rewritten
// encrypted and removed.
type DirJournal struct {
	dir  string
	aead cipher.AEAD
}

// JournalKeySize is the size of a DirJournal key.
const JournalKeySize = chacha20poly1305.KeySize

// journalVersion is the first byte of every job file.
const journalVersion = 1

// NewDirJournal returns a journal in dir, creating it (mode 0700) if needed, whose files are
// encrypted under key (JournalKeySize bytes; ledger.Ledger.StateKey gives one that the ledger's
// key vault keeps wrapped). A key of another size fails with ErrConfig. The key is copied.
func NewDirJournal(dir string, key []byte) (*DirJournal, error) {
	if len(key) != JournalKeySize {
		return nil, fmt.Errorf("%w: the media journal key must be %d bytes, not %d", ErrConfig, JournalKeySize, len(key))
	}
	aead, err := chacha20poly1305.NewX(slices.Clone(key))
	if err != nil {
		return nil, fmt.Errorf("%w: media journal key: %v", ErrConfig, err)
	}
	if err := durable.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("dingtalk: media journal: %w", err)
	}
	return &DirJournal{dir: dir, aead: aead}, nil
}

// ErrBadJobID is returned for a job id that is not lowercase hex of a sane length.
var ErrBadJobID = errors.New("dingtalk: media job id must be 16 to 64 lowercase hex digits")

// ErrJournalCorrupt is wrapped by List's errors for a job file that does not decrypt or parse.
var ErrJournalCorrupt = errors.New("dingtalk: media journal file does not decrypt or parse")

func checkJobID(id string) error {
	if len(id) < 16 || len(id) > 64 || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: %q", ErrBadJobID, id)
	}
	return nil
}

const jobExt, legacyExt = ".job", ".json"

// legacyTmpPrefix starts the names of the temporary files earlier versions wrote jobs to, in
// plain text, before renaming them to <id>.json.
const legacyTmpPrefix = ".tmp-"

func (j *DirJournal) path(id string) string { return filepath.Join(j.dir, id+jobExt) }

func jobAD(id string) []byte { return append([]byte{journalVersion}, id...) }

// seal encrypts job.
func (j *DirJournal) seal(job *MediaJob) ([]byte, error) {
	pt, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, 1+chacha20poly1305.NonceSizeX+len(pt)+j.aead.Overhead())
	out[0] = journalVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	out = j.aead.Seal(out, out[1:1+chacha20poly1305.NonceSizeX], pt, jobAD(job.ID))
	clear(pt)
	return out, nil
}

// open decrypts the file of job id.
func (j *DirJournal) open(id string, b []byte) (MediaJob, error) {
	var job MediaJob
	if len(b) < 1+chacha20poly1305.NonceSizeX+j.aead.Overhead() || b[0] != journalVersion {
		return job, fmt.Errorf("%w: unknown version or too short", ErrJournalCorrupt)
	}
	pt, err := j.aead.Open(nil, b[1:1+chacha20poly1305.NonceSizeX], b[1+chacha20poly1305.NonceSizeX:], jobAD(id))
	if err != nil {
		return job, fmt.Errorf("%w: %v (another key, or altered)", ErrJournalCorrupt, err)
	}
	defer clear(pt)
	if err := json.Unmarshal(pt, &job); err != nil {
		return job, fmt.Errorf("%w: %v", ErrJournalCorrupt, err)
	}
	if job.ID != id {
		return job, fmt.Errorf("%w: holds job %q", ErrJournalCorrupt, job.ID)
	}
	return job, nil
}

// Put encrypts job and writes it durably, replacing an earlier version of it.
func (j *DirJournal) Put(ctx context.Context, job MediaJob) error {
	if err := checkJobID(job.ID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := j.seal(&job)
	if err != nil {
		return fmt.Errorf("dingtalk: media journal: %w", err)
	}
	if err := durable.WriteFile(j.path(job.ID), b); err != nil {
		return fmt.Errorf("dingtalk: media journal: %w", err)
	}
	return nil
}

// Delete removes the job durably.
func (j *DirJournal) Delete(ctx context.Context, id string) error {
	if err := checkJobID(id); err != nil {
		return err
	}
	err := os.Remove(j.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = durable.SyncDir(j.dir)
	}
	if err != nil {
		return fmt.Errorf("dingtalk: media journal: %w", err)
	}
	return nil
}

// List decrypts every job file. A file that cannot be read, decrypted or parsed is reported
// (errors.Join; ErrJournalCorrupt for the last two) and left in place; the jobs that could be
// read are returned beside that error. Legacy plain-text jobs are rewritten encrypted first.
func (j *DirJournal) List(ctx context.Context) ([]MediaJob, error) {
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("dingtalk: media journal: %w", err)
	}
	var jobs []MediaJob
	var errs []error
	seen := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, jobExt) {
			continue
		}
		id := strings.TrimSuffix(name, jobExt)
		if checkJobID(id) != nil {
			errs = append(errs, fmt.Errorf("dingtalk: media journal: %s: %w", name, ErrBadJobID))
			continue
		}
		b, err := os.ReadFile(filepath.Join(j.dir, name))
		if err != nil {
			errs = append(errs, fmt.Errorf("dingtalk: media journal: %w", err))
			continue
		}
		job, err := j.open(id, b)
		if err != nil {
			errs = append(errs, fmt.Errorf("dingtalk: media journal: %s: %w", name, err))
			continue
		}
		seen[id] = true
		jobs = append(jobs, job)
	}
	scrubbed := false
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() && strings.HasPrefix(name, legacyTmpPrefix) {
			// A plain-text temporary file of an earlier version's write, interrupted before
			// its rename: the job it held is in its .json file or was never acknowledged.
			if err := durable.Scrub(filepath.Join(j.dir, name), nil); err != nil {
				errs = append(errs, fmt.Errorf("dingtalk: media journal: %w", err))
			}
			scrubbed = true
			continue
		}
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, legacyExt) {
			continue
		}
		job, err := j.migrate(ctx, name, seen)
		if err != nil {
			errs = append(errs, fmt.Errorf("dingtalk: media journal: %s: %w", name, err))
			continue
		}
		if job != nil {
			jobs = append(jobs, *job)
		}
	}
	if scrubbed {
		if err := durable.SyncDir(j.dir); err != nil {
			errs = append(errs, fmt.Errorf("dingtalk: media journal: %w", err))
		}
	}
	return jobs, errors.Join(errs...)
}

// migrate rewrites a legacy plain-text job file encrypted and removes it. It returns the job,
// or nil when an encrypted version was already listed.
func (j *DirJournal) migrate(ctx context.Context, name string, seen map[string]bool) (*MediaJob, error) {
	id := strings.TrimSuffix(name, legacyExt)
	if err := checkJobID(id); err != nil {
		return nil, err
	}
	p := filepath.Join(j.dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var job MediaJob
	if err := json.Unmarshal(b, &job); err != nil {
		return nil, fmt.Errorf("%w: legacy plain-text job: %v", ErrJournalCorrupt, err)
	}
	if job.ID != id {
		return nil, fmt.Errorf("%w: legacy plain-text job holds job %q", ErrJournalCorrupt, job.ID)
	}
	if !seen[id] { // a crash between writing the encrypted job and removing this one
		if err := j.Put(ctx, job); err != nil {
			return nil, err
		}
	}
	if err := os.Remove(p); err != nil {
		return nil, err
	}
	if err := durable.SyncDir(j.dir); err != nil {
		return nil, err
	}
	if seen[id] {
		return nil, nil
	}
	return &job, nil
}
