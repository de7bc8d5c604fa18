package service

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"

	"github.com/msk-consumer/msk-consumer/config"
)

// newOpsLogger is the logger of the operator commands (check, redrive,
// offsets), whose log lines share stderr with what they print: lines of
// text when stderr is a terminal (a person at `kubectl exec -it`), else
// LOG_FORMAT's lines as for the service (a pipeline's log).
func newOpsLogger(o config.Ops, w io.Writer) (*zap.Logger, error) {
	return opsLogger(o, w, isTerminal(w))
}

func opsLogger(o config.Ops, w io.Writer, terminal bool) (*zap.Logger, error) {
	if !terminal {
		return newLogger(o, w)
	}
	level, err := zapcore.ParseLevel(o.LogLevel)
	if err != nil {
		return nil, err
	}
	return zap.New(zapcore.NewCore(&textEncoder{MapObjectEncoder: zapcore.NewMapObjectEncoder()}, zapcore.Lock(zapcore.AddSync(w)), level)), nil
}

// textEncoder writes an entry as one line for a person: "warning: " or
// "error: " above info, the message, then the fields as key=value in the
// order of their names. No time, level name or logger name: the command's
// own output has none either.
type textEncoder struct {
	*zapcore.MapObjectEncoder // the fields of With
}

var textPool = buffer.NewPool()

func (e *textEncoder) Clone() zapcore.Encoder {
	c := zapcore.NewMapObjectEncoder()
	maps.Copy(c.Fields, e.Fields)
	return &textEncoder{MapObjectEncoder: c}
}

func (e *textEncoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	all := e.Clone().(*textEncoder)
	for _, f := range fields {
		f.AddTo(all)
	}
	b := textPool.Get()
	switch {
	case ent.Level >= zapcore.ErrorLevel:
		b.AppendString("error: ")
	case ent.Level == zapcore.WarnLevel:
		b.AppendString("warning: ")
	}
	b.AppendString(ent.Message)
	for _, k := range slices.Sorted(maps.Keys(all.Fields)) {
		v := fmt.Sprint(all.Fields[k])
		if strings.ContainsAny(v, " \t\n\"") {
			v = fmt.Sprintf("%q", v)
		}
		b.AppendString(" " + k + "=" + v)
	}
	b.AppendByte('\n')
	return b, nil
}
