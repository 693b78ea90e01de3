using System.Globalization;
using System.Text;

namespace Samsa.Host;

/// <summary>
/// Prefixes every line written through it with the local time, as upstream's log4j layout
/// (<c>[%d] %p %m (%c)%n</c>, e.g. <c>[2026-12-06 10:01:02,345] INFO ...</c>) starts its lines, so
/// a broker's or Keeper's log says when things happened. Installed on stderr (the log) by the
/// server commands; stdout keeps the bare <c>kafka listening on HOST:PORT</c> and
/// <c>keeper listening on HOST:PORT</c> lines, which scripts and tests read as a contract (they
/// match those lines from their first character). Wrap it in <see cref="TextWriter.Synchronized"/>
/// so a line is written whole even when threads log at once.
/// </summary>
internal sealed class TimestampedWriter(TextWriter inner, Func<DateTime>? clock = null) : TextWriter
{
    private readonly Func<DateTime> _clock = clock ?? (() => DateTime.Now);
    private bool _atLineStart = true;

    public override Encoding Encoding => inner.Encoding;
    public override IFormatProvider FormatProvider => CultureInfo.InvariantCulture;

    /// <summary>The prefix of a line written at <paramref name="time"/>: "[yyyy-MM-dd HH:mm:ss,fff] ".</summary>
    public static string Prefix(DateTime time) =>
        "[" + time.ToString("yyyy-MM-dd HH:mm:ss,fff", CultureInfo.InvariantCulture) + "] ";

    public override void Write(char value)
    {
        if (_atLineStart && value != '\n') { inner.Write(Prefix(_clock())); _atLineStart = false; }
        inner.Write(value);
        if (value == '\n') _atLineStart = true;
    }

    public override void Write(string? value)
    {
        if (string.IsNullOrEmpty(value)) return;
        var sb = new StringBuilder(value.Length + 32);
        int start = 0;
        while (start < value.Length)
        {
            int nl = value.IndexOf('\n', start);
            int end = nl < 0 ? value.Length : nl + 1;
            // An empty line stays empty; a line gets its stamp when its first character arrives.
            if (_atLineStart && !(nl == start)) { sb.Append(Prefix(_clock())); _atLineStart = false; }
            sb.Append(value, start, end - start);
            if (nl >= 0) _atLineStart = true;
            start = end;
        }
        inner.Write(sb.ToString());
    }

    public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

    public override void WriteLine(string? value) => Write((value ?? "") + CoreNewLineStr);

    public override void WriteLine() => Write(CoreNewLineStr);

    private string CoreNewLineStr => new(CoreNewLine);

    public override void Flush() => inner.Flush();
}
