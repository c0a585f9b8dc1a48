using ScottPlot;

namespace NativeSparsity.Experiments.Reporting;

/// <summary>One line of a line chart.</summary>
public sealed record Series(string Label, double[] X, double[] Y);

/// <summary>PNG charts for reports (ScottPlot 5): labelled axes, a legend, a title, readable at a glance.</summary>
public static class Plots
{
    public const int Width = 900, Height = 560;

    /// <summary>A line chart with markers; an optional horizontal band (e.g. the epsilon band) and vertical marks.</summary>
    public static void Lines(string path, string title, string xLabel, string yLabel, IEnumerable<Series> series,
                             (double Low, double High, string Label)? band = null, IEnumerable<(double X, string Label)>? marks = null,
                             bool percentX = false, bool percentY = false)
    {
        var plt = new Plot();
        if (band is { } b)
        {
            var span = plt.Add.VerticalSpan(b.Low, b.High);   // a band of y values
            span.LegendText = b.Label;
            span.FillStyle.Color = Colors.Gray.WithAlpha(0.2);
        }
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        foreach (var s in series)
        {
            var sc = plt.Add.Scatter(s.X, s.Y);
            sc.LegendText = s.Label;
            sc.Color = palette.GetColor(i++);
            sc.LineWidth = 2;
            sc.MarkerSize = s.X.Length <= 40 ? 6 : 0;
        }
        if (marks != null)
            foreach (var (x, label) in marks)
            {
                var line = plt.Add.VerticalLine(x);
                line.LegendText = label;
                line.LinePattern = LinePattern.Dashed;
                line.Color = palette.GetColor(i++);
            }
        if (percentX) plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = v => $"{v * 100:0}%" };
        if (percentY) plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = v => $"{v * 100:0.###}%" };
        plt.Title(title);
        plt.XLabel(xLabel);
        plt.YLabel(yLabel);
        plt.ShowLegend(Alignment.UpperLeft);
        Save(plt, path);
    }

    /// <summary>A heatmap of a square matrix with row/column labels and the values written in the cells.</summary>
    public static void Heatmap(string path, string title, string[] labels, double[,] values, string colorLabel)
    {
        var plt = new Plot();
        int n = labels.Length;
        // ScottPlot draws row 0 at the top; flip so the first label sits at the top of the y axis too.
        var hm = plt.Add.Heatmap(values);
        hm.Colormap = new ScottPlot.Colormaps.Viridis();
        plt.Add.ColorBar(hm).Label = colorLabel;
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++)
            {
                var t = plt.Add.Text($"{values[r, c]:0.000}", c, n - 1 - r);
                t.LabelAlignment = Alignment.MiddleCenter;
                t.LabelFontColor = Colors.White;
            }
        double[] positions = Enumerable.Range(0, n).Select(v => (double)v).ToArray();
        plt.Axes.Bottom.SetTicks(positions, labels);
        plt.Axes.Left.SetTicks(positions, labels.Reverse().ToArray());
        plt.Title(title);
        Save(plt, path);
    }

    /// <summary>Grouped bars: one group per category, one bar per series.</summary>
    public static void GroupedBars(string path, string title, string yLabel, string[] categories, IReadOnlyList<(string Label, double[] Values)> series, bool logY = false)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int k = series.Count;
        for (int s = 0; s < k; s++)
        {
            var bars = new List<Bar>();
            for (int c = 0; c < categories.Length; c++)
            {
                double v = series[s].Values[c];
                bars.Add(new Bar { Position = c * (k + 1) + s, Value = logY ? Math.Log10(Math.Max(v, 1e-12)) : v, FillColor = palette.GetColor(s) });
            }
            var bp = plt.Add.Bars(bars);
            bp.LegendText = series[s].Label;
        }
        double[] ticks = Enumerable.Range(0, categories.Length).Select(c => c * (k + 1) + (k - 1) / 2.0).ToArray();
        plt.Axes.Bottom.SetTicks(ticks, categories);
        plt.Title(title);
        plt.YLabel(logY ? $"log10 {yLabel}" : yLabel);
        plt.ShowLegend(Alignment.UpperRight);
        Save(plt, path);
    }

    private static void Save(Plot plt, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plt.SavePng(path, Width, Height);
    }
}
