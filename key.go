package switchboard

import (
	"fmt"
	"strings"
	"unsafe"
)

// SessionKey identifies one conversation: a room (chat, channel, DM) of one
// bridge instance of one channel type, optionally narrowed to a thread.
//
// The zero value is not a valid key. SessionKey is a comparable value type
// and safe to copy.
type SessionKey struct {
	ChannelType string // "telegram", "slack", …; required
	BridgeID    string // the bot, bridge or workspace instance; required
	RoomID      string // the conversation; required
	ThreadID    string // "" means no thread (room scope)
}

// Validate reports whether k is a valid session key: ChannelType, BridgeID
// and RoomID are non-empty, and every field is valid UTF-8 without control
// characters and at most MaxFieldLen bytes. The error wraps
// ErrInvalidSessionKey and names the field.
func (k SessionKey) Validate() error {
	if k.ChannelType != "" && k.BridgeID != "" && k.RoomID != "" &&
		fieldOK(k.ChannelType) && fieldOK(k.BridgeID) && fieldOK(k.RoomID) && fieldOK(k.ThreadID) {
		return nil
	}
	return k.validateSlow()
}

func (k SessionKey) validateSlow() error {
	if k.ChannelType == "" {
		return fmt.Errorf("%w: ChannelType is empty", ErrInvalidSessionKey)
	}
	if k.BridgeID == "" {
		return fmt.Errorf("%w: BridgeID is empty", ErrInvalidSessionKey)
	}
	if k.RoomID == "" {
		return fmt.Errorf("%w: RoomID is empty", ErrInvalidSessionKey)
	}
	for _, f := range [...]struct{ name, v string }{
		{"ChannelType", k.ChannelType}, {"BridgeID", k.BridgeID}, {"RoomID", k.RoomID}, {"ThreadID", k.ThreadID},
	} {
		if why := checkField(f.v); why != "" {
			return fmt.Errorf("%w: %s %s", ErrInvalidSessionKey, f.name, why)
		}
	}
	return nil
}

// RoomScope returns k with ThreadID cleared: the key of the room the thread
// belongs to.
func (k SessionKey) RoomScope() SessionKey {
	k.ThreadID = ""
	return k
}

// SameRoom reports whether k and o name the same room (same channel type,
// bridge and room), whatever their threads.
func (k SessionKey) SameRoom(o SessionKey) bool {
	return k.ChannelType == o.ChannelType && k.BridgeID == o.BridgeID && k.RoomID == o.RoomID
}

// String returns the string form of k: its components joined by ':', three
// when ThreadID is empty and four otherwise. Inside a component '%' is
// written "%25" and ':' is written "%3A", so ids such as Matrix's
// "!abc:matrix.org" survive. ParseSessionKey is its exact inverse for every
// valid key.
func (k SessionKey) String() string {
	n := 3
	if k.ThreadID != "" {
		n = 4
	}
	parts := [4]string{k.ChannelType, k.BridgeID, k.RoomID, k.ThreadID}
	size := n - 1
	plain := true
	for _, p := range parts[:n] {
		size += len(p)
		if strings.ContainsAny(p, "%:") {
			plain = false
		}
	}
	if plain {
		return strings.Join(parts[:n], ":")
	}
	b := k.appendString(make([]byte, 0, size+8))
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is not used again: one allocation
}

// needsEscape reports whether p holds a '%' or a ':', which the string
// form escapes. (A loop: strings.ContainsAny(p, "%:") was two thirds of
// AppendText's time, which the Redis backend pays on every read.)
func needsEscape(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '%' || c == ':' {
			return true
		}
	}
	return false
}

// appendString appends the string form of k to b.
func (k SessionKey) appendString(b []byte) []byte {
	n := 3
	if k.ThreadID != "" {
		n = 4
	}
	parts := [4]string{k.ChannelType, k.BridgeID, k.RoomID, k.ThreadID}
	for i, p := range parts[:n] {
		if i > 0 {
			b = append(b, ':')
		}
		if !needsEscape(p) {
			b = append(b, p...)
			continue
		}
		for j := 0; j < len(p); j++ {
			switch c := p[j]; c {
			case '%':
				b = append(b, "%25"...)
			case ':':
				b = append(b, "%3A"...)
			default:
				b = append(b, c)
			}
		}
	}
	return b
}

// ParseSessionKey parses the string form produced by SessionKey.String. A
// wrong number of components, an empty required component, an empty thread
// in the four-component form, an escape other than "%25" and "%3A" (or
// "%3a"), or a field that fails Validate is an error wrapping
// ErrInvalidSessionKey.
func ParseSessionKey(s string) (SessionKey, error) {
	var parts [4]string
	n := 0
	rest := s
	for {
		i := strings.IndexByte(rest, ':')
		if n == len(parts) {
			return SessionKey{}, fmt.Errorf("%w: %q has more than 4 components", ErrInvalidSessionKey, s)
		}
		if i < 0 {
			parts[n] = rest
			n++
			break
		}
		parts[n] = rest[:i]
		rest = rest[i+1:]
		n++
	}
	if n < 3 {
		return SessionKey{}, fmt.Errorf("%w: %q has %d components, want 3 or 4", ErrInvalidSessionKey, s, n)
	}
	names := [4]string{"ChannelType", "BridgeID", "RoomID", "ThreadID"}
	for i := range n {
		v, err := unescapeComponent(parts[i])
		if err != nil {
			return SessionKey{}, fmt.Errorf("%w: %s %v", ErrInvalidSessionKey, names[i], err)
		}
		parts[i] = v
	}
	if n == 4 && parts[3] == "" {
		return SessionKey{}, fmt.Errorf("%w: ThreadID is empty in a four-component key %q", ErrInvalidSessionKey, s)
	}
	k := SessionKey{ChannelType: parts[0], BridgeID: parts[1], RoomID: parts[2], ThreadID: parts[3]}
	if err := k.Validate(); err != nil {
		return SessionKey{}, err
	}
	return k, nil
}

func unescapeComponent(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		switch esc := s[i+1 : min(i+3, len(s))]; esc {
		case "25":
			b.WriteByte('%')
		case "3A", "3a":
			b.WriteByte(':')
		default:
			return "", fmt.Errorf("has a bad escape %q at byte %d (only %%25 and %%3A are defined)", "%"+esc, i)
		}
		i += 2
	}
	return b.String(), nil
}

// AppendText implements encoding.TextAppender: it appends the string form
// of k to b, as MarshalText returns it (nothing for the zero SessionKey; an
// error wrapping ErrInvalidSessionKey, and b unchanged, for any other
// invalid key).
func (k SessionKey) AppendText(b []byte) ([]byte, error) {
	if k == (SessionKey{}) {
		return b, nil
	}
	if err := k.Validate(); err != nil {
		return b, err
	}
	return k.appendString(b), nil
}

// MarshalText implements encoding.TextMarshaler with the string form. The
// zero SessionKey marshals to an empty text; any other invalid key is an
// error wrapping ErrInvalidSessionKey.
func (k SessionKey) MarshalText() ([]byte, error) {
	if k == (SessionKey{}) {
		return []byte{}, nil
	}
	if err := k.Validate(); err != nil {
		return nil, err
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseSessionKey.
// An empty text yields the zero SessionKey.
func (k *SessionKey) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*k = SessionKey{}
		return nil
	}
	parsed, err := ParseSessionKey(string(text))
	if err != nil {
		return err
	}
	*k = parsed
	return nil
}

// appendKey appends the encoding of k to b: ChannelType "\x00" BridgeID
// "\x00" RoomID, then "\x00" ThreadID when there is a thread. It is
// unambiguous because valid fields hold no control characters, and a
// thread's room encoding is a prefix of the thread's. The Manager's
// StoreKey.Hash is a seeded maphash of it (see keyHashes); the memory
// backend keeps it as the key.
func appendKey(b []byte, k SessionKey) []byte {
	b = append(b, k.ChannelType...)
	b = append(b, 0)
	b = append(b, k.BridgeID...)
	b = append(b, 0)
	b = append(b, k.RoomID...)
	if k.ThreadID != "" {
		b = append(b, 0)
		b = append(b, k.ThreadID...)
	}
	return b
}

// encodedLen returns len(appendKey(nil, k)).
func encodedLen(k SessionKey) int {
	n := len(k.ChannelType) + len(k.BridgeID) + len(k.RoomID) + 2
	if k.ThreadID != "" {
		n += 1 + len(k.ThreadID)
	}
	return n
}

// decodeKey is the inverse of appendKey; the key's strings are new (one
// allocation, which they share).
func decodeKey(enc []byte) SessionKey { return splitKey(string(enc)) }

// peekKey is decodeKey without the allocation: the key's strings are enc's
// bytes, so it is valid only as long as enc does not change (for a table's
// key, while the partition's lock is held).
func peekKey(enc []byte) SessionKey {
	if len(enc) == 0 {
		return SessionKey{}
	}
	return splitKey(unsafe.String(&enc[0], len(enc)))
}

// splitKey is decodeKey for an encoding that is a string: the key's
// strings are substrings of it.
func splitKey(rest string) SessionKey {
	var parts [4]string
	for n := 0; n < 3; n++ {
		i := strings.IndexByte(rest, 0)
		if i < 0 {
			parts[n] = rest
			rest = ""
			break
		}
		parts[n], rest = rest[:i], rest[i+1:]
		if n == 2 {
			parts[3], rest = rest, ""
		}
	}
	return SessionKey{ChannelType: parts[0], BridgeID: parts[1], RoomID: parts[2], ThreadID: parts[3]}
}
