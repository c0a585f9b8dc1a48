using System.Diagnostics;

namespace NativeSparsity.Experiments.Reporting;

/// <summary>
/// A live status line with rate and ETA: rewritten in place on a terminal, printed as a new line
/// at most every few seconds when the output is a file or a CI log.
/// </summary>
public sealed class ProgressLine
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _interactive = !Console.IsOutputRedirected;
    private readonly TimeSpan _redirectedEvery;
    private TimeSpan? _lastPrint;
    private readonly object _gate = new();
    private readonly long _total, _start;
    private readonly string _unit;
    private int _lastLength;

    public ProgressLine(long total, long start = 0, string unit = "step", double redirectedEverySeconds = 10)
    {
        _total = total; _start = start; _unit = unit;
        _redirectedEvery = TimeSpan.FromSeconds(redirectedEverySeconds);
    }

    /// <summary>Shows progress at <paramref name="done"/> of the total with extra text (loss etc.).</summary>
    public void Update(long done, string detail, bool force = false)
    {
        lock (_gate) UpdateLocked(done, detail, force);
    }

    private void UpdateLocked(long done, string detail, bool force)
    {
        var now = _clock.Elapsed;
        if (!force && _lastPrint is TimeSpan last && now - last < (_interactive ? TimeSpan.FromMilliseconds(200) : _redirectedEvery)) return;
        _lastPrint = now;
        double rate = (done - _start) / Math.Max(now.TotalSeconds, 1e-9);
        string eta = rate > 0 && done < _total ? Format(TimeSpan.FromSeconds((_total - done) / rate)) : "-";
        string line = $"{_unit} {done}/{_total} ({100.0 * done / Math.Max(_total, 1):F1}%)  {detail}  {rate:F2} {_unit}/s  elapsed {Format(now)}  ETA {eta}";
        if (_interactive)
        {
            Console.Write("\r" + line.PadRight(_lastLength));
            _lastLength = line.Length;
        }
        else Console.WriteLine(line);
    }

    /// <summary>Ends the live line so the next output starts on a fresh line.</summary>
    public void Finish()
    {
        if (_interactive && _lastLength > 0) Console.WriteLine();
        _lastLength = 0;
    }

    /// <summary>Prints a message without garbling the live line.</summary>
    public void Message(string text)
    {
        if (_interactive && _lastLength > 0) { Console.Write("\r" + new string(' ', _lastLength) + "\r"); _lastLength = 0; }
        Console.WriteLine(text);
    }

    public static string Format(TimeSpan t) =>
        t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : t.TotalMinutes >= 1 ? $"{t.Minutes}m{t.Seconds:00}s" : $"{t.TotalSeconds:F1}s";
}
