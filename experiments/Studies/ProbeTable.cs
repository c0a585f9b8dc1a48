using System.Globalization;

namespace NativeSparsity.Experiments.Studies;

/// <summary>probe.csv read back by column name (the study reports read finished runs from disk, so they resume).</summary>
public sealed class ProbeTable
{
    private readonly Dictionary<string, int> _columns;
    private readonly List<string[]> _rows;

    public ProbeTable(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no probe log (did the run probe? --probe-every must be > 0)", path);
        var lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToList();
        if (lines.Count < 2) throw new InvalidDataException($"{path}: the probe log holds no records");
        Header = lines[0].Split(',');
        _columns = Header.Select((h, i) => (h, i)).ToDictionary(x => x.h, x => x.i);
        _rows = lines.Skip(1).Select(l => l.Split(',')).ToList();
        Path = path;
    }

    public string Path { get; }
    public string[] Header { get; }
    public int Count => _rows.Count;
    public bool Has(string column) => _columns.ContainsKey(column);

    public double[] Column(string name)
    {
        if (!_columns.TryGetValue(name, out int c))
            throw new InvalidDataException($"{Path}: no column '{name}' (columns: {string.Join(", ", Header)})");
        return _rows.Select(r => r[c].Length == 0 ? double.NaN : double.Parse(r[c], CultureInfo.InvariantCulture)).ToArray();
    }

    /// <summary>
    /// The window of the largest increase per step of <paramref name="values"/> between consecutive
    /// probes: (start step, end step, increase per step). Null with fewer than two probes.
    /// </summary>
    public static (double Start, double End, double RatePerStep)? SharpestRise(double[] steps, double[] values)
    {
        (double, double, double)? best = null;
        for (int i = 1; i < steps.Length; i++)
        {
            double dt = steps[i] - steps[i - 1];
            if (dt <= 0) continue;
            double rate = (values[i] - values[i - 1]) / dt;
            if (best == null || rate > best.Value.Item3) best = (steps[i - 1], steps[i], rate);
        }
        return best;
    }
}
