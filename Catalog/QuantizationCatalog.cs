using Microsoft.ML;

namespace MLNetQuant;

/// <summary>The quantization entry points of an <see cref="MLContext"/>, reached with
/// <c>mlContext.Quantization()</c>. Holds the context whose seed, log and device settings every algorithm uses.</summary>
public sealed class QuantizationCatalog
{
    internal QuantizationCatalog(MLContext context)
    {
        Context = context;
    }

    /// <summary>The ML.NET context the estimators created from this catalog belong to.</summary>
    public MLContext Context { get; }
}
