using Microsoft.ML;

namespace MLNetQuant;

/// <summary>Adds <see cref="Quantization"/> to <see cref="MLContext"/>.</summary>
public static class MLContextExtensions
{
    /// <summary>The quantization catalog of <paramref name="context"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> is null.</exception>
    public static QuantizationCatalog Quantization(this MLContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new QuantizationCatalog(context);
    }
}
