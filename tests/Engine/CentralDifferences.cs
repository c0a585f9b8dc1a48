namespace NativeSparsity.Tests.Engine;

/// <summary>Numerical gradients of float64 reference functions, for checking backward ops.</summary>
internal static class CentralDifferences
{
    /// <summary>(f(x + h e_i) - f(x - h e_i)) / 2h for every coordinate i of x.</summary>
    public static double[] Gradient(Func<double[], double> loss, double[] x, double h = 1e-5)
    {
        var grad = new double[x.Length];
        var probe = (double[])x.Clone();
        for (int i = 0; i < x.Length; i++)
        {
            probe[i] = x[i] + h;
            double plus = loss(probe);
            probe[i] = x[i] - h;
            double minus = loss(probe);
            probe[i] = x[i];
            grad[i] = (plus - minus) / (2 * h);
        }
        return grad;
    }

    /// <summary>An array of NaNs: the initial contents of an output an op must overwrite.</summary>
    public static float[] Nans(int n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return a;
    }
}
