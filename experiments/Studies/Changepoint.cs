namespace NativeSparsity.Experiments.Studies;

/// <summary>What <see cref="Changepoint.DetectRise"/> found in one curve.</summary>
/// <param name="Abrupt">True when a sudden rise is detected (see <see cref="Changepoint"/> for the rule).</param>
/// <param name="Step">The first probe step after the jump (the jump lies between the previous probe and this one).</param>
/// <param name="Height">The fitted jump, in the curve's units.</param>
/// <param name="DeltaBic">BIC of the smooth model minus BIC of the model with the jump (positive favours the jump).</param>
public readonly record struct ChangepointResult(bool Abrupt, double Step, double Height, double DeltaBic)
{
    public static ChangepointResult None => new(false, double.NaN, 0, double.NaN);
}

/// <summary>
/// A stated test for a sudden rise in a curve sampled at probe steps (claim 2: the near-zero count
/// "suddenly jumps"). Two least-squares models are compared by BIC (Gaussian residuals):
/// <list type="bullet">
/// <item>smooth: a cubic spline in the step with a knot every 10% of the run (13 parameters), which
/// absorbs slow trends, saturation and S-shapes wider than about a tenth of the run;</item>
/// <item>jump: the same spline plus a level shift h at one probe step tau (15 parameters counting tau,
/// searched over every probe but the first and last <see cref="TrimFraction"/> of them).</item>
/// </list>
/// The rise is called abrupt when the jump model wins by more than <see cref="MinDeltaBic"/> (10:
/// "very strong" evidence on Kass and Raftery's scale), h is positive, and h is at least
/// <paramref name="minJump"/> in the curve's units, so that a significant but negligible step (a few
/// weights out of a million) is not reported. A rise spread over more than a few probe intervals is
/// smooth at the spline's resolution and is fitted by it; that is the intended reading of "sudden".
/// Probes are autocorrelated, which makes BIC overconfident; the size threshold and
/// the spline's flexibility are the guard, and the tests check the rule on synthetic curves with and without a jump.
/// </summary>
public static class Changepoint
{
    public const double MinDeltaBic = 10;
    public const double TrimFraction = 0.05;
    /// <summary>Interior knots of the smooth model's cubic spline, evenly spaced (every 10% of the run).</summary>
    public const int Knots = 9;
    private const int SmoothParameters = 4 + Knots;

    public static ChangepointResult DetectRise(double[] steps, double[] values, double minJump)
    {
        if (steps.Length != values.Length) throw new ArgumentException($"{steps.Length} steps but {values.Length} values");
        var points = steps.Zip(values).Where(p => double.IsFinite(p.First) && double.IsFinite(p.Second)).ToArray();
        int n = points.Length;
        if (n < 4 * (SmoothParameters + 2)) return ChangepointResult.None; // too few probes to tell a jump from a bend
        double x0 = points[0].First, span = points[^1].First - x0;
        if (span <= 0) return ChangepointResult.None;
        var x = points.Select(p => (p.First - x0) / span).ToArray(); // [0, 1], where the knots are
        var y = points.Select(p => p.Second).ToArray();
        double range = y.Max() - y.Min();
        if (range == 0) return ChangepointResult.None;
        // A floor on the residual sum keeps BIC finite on noise-free curves (float-rounding level).
        double floor = n * Math.Pow(1e-9 * range, 2);

        double smooth = Rss(x, y, -1, out _);
        int trim = Math.Max(2, (int)Math.Ceiling(TrimFraction * n));
        double bestRss = double.PositiveInfinity, bestHeight = 0; int bestAt = -1;
        for (int at = trim; at < n - trim; at++)
        {
            double rss = Rss(x, y, at, out double h);
            if (rss < bestRss) (bestRss, bestHeight, bestAt) = (rss, h, at);
        }
        if (bestAt < 0) return ChangepointResult.None;
        double Bic(double rss, int k) => n * Math.Log(Math.Max(rss, floor) / n) + k * Math.Log(n);
        double delta = Bic(smooth, SmoothParameters) - Bic(bestRss, SmoothParameters + 2);
        bool abrupt = delta > MinDeltaBic && bestHeight > 0 && bestHeight >= minJump;
        return new ChangepointResult(abrupt, points[bestAt].First, bestHeight, delta);
    }

    /// <summary>
    /// Residual sum of squares of the least-squares smooth spline, plus a level shift from index
    /// <paramref name="stepAt"/> on when it is not negative; <paramref name="height"/> is that shift.
    /// </summary>
    private static double Rss(double[] x, double[] y, int stepAt, out double height)
    {
        int k = SmoothParameters + (stepAt >= 0 ? 1 : 0);
        var a = new double[x.Length, k];
        for (int i = 0; i < x.Length; i++)
        {
            a[i, 0] = 1; a[i, 1] = x[i]; a[i, 2] = x[i] * x[i]; a[i, 3] = x[i] * x[i] * x[i];
            for (int j = 0; j < Knots; j++)
            {
                double d = x[i] - (j + 1.0) / (Knots + 1);
                a[i, 4 + j] = d > 0 ? d * d * d : 0;
            }
            if (stepAt >= 0) a[i, k - 1] = i >= stepAt ? 1 : 0;
        }
        var (beta, rss) = LeastSquares(a, y);
        height = stepAt >= 0 ? beta[k - 1] : 0;
        return rss;
    }

    /// <summary>Least squares by Householder QR (the truncated-power spline basis is too ill-conditioned for normal equations).</summary>
    private static (double[] Beta, double Rss) LeastSquares(double[,] a, double[] y)
    {
        int n = a.GetLength(0), k = a.GetLength(1);
        var b = (double[])y.Clone();
        var v = new double[n];
        for (int c = 0; c < k; c++)
        {
            double norm = 0;
            for (int r = c; r < n; r++) norm += a[r, c] * a[r, c];
            norm = Math.Sqrt(norm);
            if (norm < 1e-300) throw new InvalidOperationException("changepoint fit: a column of the design is zero");
            double alpha = a[c, c] > 0 ? -norm : norm;
            for (int r = c; r < n; r++) v[r] = a[r, c];
            v[c] -= alpha;
            double vv = 0;
            for (int r = c; r < n; r++) vv += v[r] * v[r];
            if (vv == 0) continue;
            for (int j = c; j < k; j++)
            {
                double dot = 0;
                for (int r = c; r < n; r++) dot += v[r] * a[r, j];
                double f = 2 * dot / vv;
                for (int r = c; r < n; r++) a[r, j] -= f * v[r];
            }
            double db = 0;
            for (int r = c; r < n; r++) db += v[r] * b[r];
            double fb = 2 * db / vv;
            for (int r = c; r < n; r++) b[r] -= fb * v[r];
        }
        var beta = new double[k];
        for (int r = k - 1; r >= 0; r--)
        {
            double sum = b[r];
            for (int j = r + 1; j < k; j++) sum -= a[r, j] * beta[j];
            if (Math.Abs(a[r, r]) < 1e-12 * Math.Abs(a[0, 0])) throw new InvalidOperationException("changepoint fit: the design is rank-deficient");
            beta[r] = sum / a[r, r];
        }
        double rss = 0;
        for (int r = k; r < n; r++) rss += b[r] * b[r];
        return (beta, rss);
    }
}
