using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>Per-tensor parameters of the fixed grids of DoReFa and BNN, for reports and export.</summary>
internal static class FixedGridQParams
{
    /// <summary>Scale <paramref name="scale"/>, zero-point 0, on the CPU.</summary>
    public static QParams Create(float scale, QuantSpec spec) =>
        new(tensor(new[] { scale }), tensor(new[] { 0L }), spec);
}
