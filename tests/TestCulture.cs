using System.Globalization;
using NUnit.Framework;

namespace NativeSparsity.Tests;

/// <summary>The test process runs with ICU (see the project file); every test sees the invariant culture, as the product does.</summary>
[SetUpFixture]
public sealed class TestCulture
{
    [OneTimeSetUp]
    public void PinCulture()
    {
        CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
        CultureInfo.DefaultThreadCurrentUICulture = CultureInfo.InvariantCulture;
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        CultureInfo.CurrentUICulture = CultureInfo.InvariantCulture;
    }
}
