package switchboard

import (
	"fmt"
	"time"
)

// Limits of the options of a write.
const (
	// MinTTL is the smallest accepted TTL, in Config and in WithTTL. The
	// HTTP API carries TTLs in milliseconds, so this is the one TTL rule of
	// the library, the server and the client.
	MinTTL = time.Millisecond
	// MinPriority and MaxPriority bound WithPriority.
	MinPriority, MaxPriority = -1000, 1000
	// MaxWriterLen is the largest accepted WithWriter label, in bytes.
	MaxWriterLen = 64
	// MaxReasonLen is the largest accepted Invalidate reason, in bytes.
	MaxReasonLen = 256
)

// CheckTTL reports whether d is an acceptable TTL: between MinTTL and
// MaxTTL. The error wraps ErrInvalidTTL.
func CheckTTL(d time.Duration) error {
	if d < MinTTL || d > MaxTTL {
		return fmt.Errorf("%w: %v must be between %v and %v", ErrInvalidTTL, d, MinTTL, MaxTTL)
	}
	return nil
}

// SetOption adjusts one Set call. The zero SetOption changes nothing.
type SetOption struct {
	kind  optionKind
	ttl   time.Duration
	prio  int
	label string
	rev   uint64
}

type optionKind uint8

const (
	optNone optionKind = iota
	optTTL
	optPriority
	optWriter
	optIfRevision
	optIfAbsent
)

// WithTTL makes the stored route fresh for d instead of the configured TTL.
// d must be between MinTTL and MaxTTL, or Set returns ErrInvalidTTL.
func WithTTL(d time.Duration) SetOption { return SetOption{kind: optTTL, ttl: d} }

// WithPriority gives the write priority p (MinPriority ≤ p ≤ MaxPriority;
// default 0). A Set whose priority is lower than that of the key's fresh,
// valid record stores nothing and returns ErrSuperseded; equal or higher
// replaces it. Expired and invalidated records never block. Typical use:
// inbound user messages write with 10, system turns (heartbeat, cron,
// tools) with the default 0, so they cannot clobber a fresh user route but
// take over once it expires.
func WithPriority(p int) SetOption { return SetOption{kind: optPriority, prio: p} }

// WithWriter labels the write with name (such as "inbound" or "cron"),
// kept as Record.Writer: valid UTF-8 without control characters, at most
// MaxWriterLen bytes. "" means no label.
func WithWriter(name string) SetOption { return SetOption{kind: optWriter, label: name} }

// IfRevision makes the Set store only if the key's fresh record (valid or
// invalidated) has exactly revision rev; otherwise it stores nothing and
// returns ErrConflict. rev must be positive.
func IfRevision(rev uint64) SetOption { return SetOption{kind: optIfRevision, rev: rev} }

// IfAbsent makes the Set store only if the key has no fresh, valid record
// (an expired or invalidated one counts as absent); otherwise it stores
// nothing and returns ErrConflict.
func IfAbsent() SetOption { return SetOption{kind: optIfAbsent} }

// SetOptions is the combined effect of a list of SetOption values, for
// code that forwards them (such as an HTTP client). Zero fields mean "not
// given".
type SetOptions struct {
	TTL        time.Duration // 0: the configured TTL
	Priority   int
	Writer     string
	IfRevision uint64 // 0: no revision condition
	IfAbsent   bool
}

// ApplySetOptions combines opts, later ones overriding earlier ones of the
// same kind, and validates them by the rules a Manager applies: a bad TTL
// wraps ErrInvalidTTL; a bad priority, writer or revision, or IfRevision
// together with IfAbsent, wraps ErrInvalidOption.
func ApplySetOptions(opts ...SetOption) (SetOptions, error) {
	var o SetOptions
	for _, opt := range opts {
		switch opt.kind {
		case optTTL:
			if err := CheckTTL(opt.ttl); err != nil {
				return SetOptions{}, err
			}
			o.TTL = opt.ttl
		case optPriority:
			if opt.prio < MinPriority || opt.prio > MaxPriority {
				return SetOptions{}, fmt.Errorf("%w: priority %d must be between %d and %d", ErrInvalidOption, opt.prio, MinPriority, MaxPriority)
			}
			o.Priority = opt.prio
		case optWriter:
			if err := CheckWriter(opt.label); err != nil {
				return SetOptions{}, err
			}
			o.Writer = opt.label
		case optIfRevision:
			if opt.rev == 0 {
				return SetOptions{}, fmt.Errorf("%w: IfRevision(0): revisions are positive (use IfAbsent for a key without a record)", ErrInvalidOption)
			}
			o.IfRevision = opt.rev
		case optIfAbsent:
			o.IfAbsent = true
		}
	}
	if o.IfAbsent && o.IfRevision != 0 {
		return SetOptions{}, fmt.Errorf("%w: IfRevision and IfAbsent exclude each other", ErrInvalidOption)
	}
	return o, nil
}

// CheckWriter reports whether name is an acceptable WithWriter label. The
// error wraps ErrInvalidOption.
func CheckWriter(name string) error {
	if len(name) > MaxWriterLen {
		return fmt.Errorf("%w: writer is longer than %d bytes (%d)", ErrInvalidOption, MaxWriterLen, len(name))
	}
	if why := checkField(name); why != "" {
		return fmt.Errorf("%w: writer %s", ErrInvalidOption, why)
	}
	return nil
}

// CheckReason reports whether reason is an acceptable Invalidate reason:
// non-empty valid UTF-8 without control characters, at most MaxReasonLen
// bytes. The error wraps ErrInvalidOption.
func CheckReason(reason string) error {
	switch {
	case reason == "":
		return fmt.Errorf("%w: the invalidation reason is empty", ErrInvalidOption)
	case len(reason) > MaxReasonLen:
		return fmt.Errorf("%w: the invalidation reason is longer than %d bytes (%d)", ErrInvalidOption, MaxReasonLen, len(reason))
	}
	if why := checkField(reason); why != "" {
		return fmt.Errorf("%w: the invalidation reason %s", ErrInvalidOption, why)
	}
	return nil
}
