using MLNetQuant.Core;

namespace MLNetQuant.OnnxPtq;

/// <summary>A float weight and the symmetric grid it is quantized on: one scale per channel along <see cref="Axis"/>
/// (repeated for per-tensor grids).</summary>
internal sealed record WeightPlan(float[] Values, long[] Shape, int Axis, QuantSpec Spec, float[] Scales)
{
    // Values per step along the channel axis (computed once: RoundToNearest and Dequantize ask per value).
    private readonly long _stride = Shape.Skip(Axis + 1).Aggregate(1L, (a, b) => a * b);

    /// <summary>The channel of the value stored at <paramref name="index"/>.</summary>
    public int ChannelOf(int index) => (int)(index / _stride % Shape[Axis]);

    /// <summary>Each value rounded to the nearest grid point, clamped to the grid.</summary>
    public int[] RoundToNearest()
    {
        var ints = new int[Values.Length];
        for (var i = 0; i < Values.Length; i++)
            ints[i] = (int)Math.Clamp(Math.Round(Values[i] / Scales[ChannelOf(i)], MidpointRounding.ToEven), Spec.Range.QMin, Spec.Range.QMax);
        return ints;
    }

    /// <summary>The float values the integers <paramref name="ints"/> stand for.</summary>
    public float[] Dequantize(int[] ints) => ints.Select((q, i) => q * Scales[ChannelOf(i)]).ToArray();
}
