package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/commseal/commseal/capture"
)

// MediaJob is one attachment still to be fetched: the message it belongs to (already sealed)
// and how to fetch it.
type MediaJob struct {
	ID           string               `json:"id"` // lowercase hex, derived from message key, index and code
	Message      capture.Key          `json:"message"`
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

// DirJournal is a MediaJournal with one small JSON file per pending job in a directory. A job
// is written to a temporary file, synced, renamed into place and the directory synced, so a
// crash leaves either the old state or the new one.
type DirJournal struct {
	dir string
}

// NewDirJournal returns a journal in dir, creating it if needed.
func NewDirJournal(dir string) (*DirJournal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dingtalk: media journal: %w", err)
	}
	return &DirJournal{dir: dir}, nil
}

// ErrBadJobID is returned for a job id that is not lowercase hex of a sane length.
var ErrBadJobID = errors.New("dingtalk: media job id must be 16 to 64 lowercase hex digits")

func checkJobID(id string) error {
	if len(id) < 16 || len(id) > 64 || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: %q", ErrBadJobID, id)
	}
	return nil
}

func (j *DirJournal) syncDir() error {
	d, err := os.Open(j.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Put writes job durably.
func (j *DirJournal) Put(ctx context.Context, job MediaJob) error {
	if err := checkJobID(job.ID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("dingtalk: media journal: %w", err)
	}
	f, err := os.CreateTemp(j.dir, ".tmp-"+job.ID+"-*")
	if err != nil {
		return fmt.Errorf("dingtalk: media journal: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(j.dir, job.ID+".json"))
	}
	if err == nil {
		err = j.syncDir()
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("dingtalk: media journal: %w", err)
	}
	return nil
}

// Delete removes the job durably.
func (j *DirJournal) Delete(ctx context.Context, id string) error {
	if err := checkJobID(id); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(j.dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = j.syncDir()
	}
	if err != nil {
		return fmt.Errorf("dingtalk: media journal: %w", err)
	}
	return nil
}

// List reads every job file. Unreadable or corrupt files are reported and left in place.
func (j *DirJournal) List(ctx context.Context) ([]MediaJob, error) {
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("dingtalk: media journal: %w", err)
	}
	var jobs []MediaJob
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(j.dir, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var job MediaJob
		if err := json.Unmarshal(b, &job); err != nil {
			errs = append(errs, fmt.Errorf("dingtalk: media journal: %s: %w", name, err))
			continue
		}
		if job.ID+".json" != name || checkJobID(job.ID) != nil {
			errs = append(errs, fmt.Errorf("dingtalk: media journal: %s: id %q does not match the file", name, job.ID))
			continue
		}
		jobs = append(jobs, job)
	}
	return jobs, errors.Join(errs...)
}
