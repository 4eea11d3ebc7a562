using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Export;

/// <summary>A quantized weight as the integers of its grid, for the exported model's int8/uint8 initializer.</summary>
internal static class WeightGrid
{
    /// <summary>The integers of <paramref name="quantized"/> (a fake-quantized weight) on <paramref name="grid"/>, with
    /// one scale and zero-point per channel along <paramref name="axis"/> (a per-tensor grid repeated), checked to be
    /// integers within 8-bit storage.</summary>
    /// <exception cref="InvalidOperationException">A value off its grid (a quantizer bug).</exception>
    /// <exception cref="NotSupportedException">A grid wider than 8 bits.</exception>
    public static (int[] Ints, float[] Scales, long[] ZeroPoints, bool Signed) Integers(string name, Tensor quantized, QParams grid, int axis)
    {
        float[] values;
        using (var detached = quantized.detach())
        using (var cpu = detached.cpu())
        using (var contiguous = cpu.contiguous())
        using (var floats = contiguous.to_type(ScalarType.Float32))
            values = floats.data<float>().ToArray();
        var shape = quantized.shape;
        var channels = shape[axis];
        var scales = grid.ScaleValues();
        var zeroPoints = grid.ZeroPointValues();
        if (scales.Length == 1 && channels > 1)
        {
            scales = Enumerable.Repeat(scales[0], (int)channels).ToArray();
            zeroPoints = Enumerable.Repeat(zeroPoints[0], (int)channels).ToArray();
        }
        var stride = shape.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
        var ints = new int[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var c = (int)(i / stride % channels);
            var q = values[i] / scales[c] + zeroPoints[c];
            var rounded = Math.Round(q, MidpointRounding.ToEven);
            if (Math.Abs(q - rounded) > 1e-2)
                throw new InvalidOperationException($"Layer '{name}': weight value {values[i]} is not on its grid (scale {scales[c]}).");
            ints[i] = (int)rounded;
        }
        var signed = grid.Spec.Dtype == QuantDtype.Int;
        var (min, max) = signed ? (-128, 127) : (0, 255);
        if (ints.Any(v => v < min || v > max))
            throw new NotSupportedException($"Layer '{name}': a {grid.Spec.Bits}-bit weight grid does not fit 8-bit storage.");
        return (ints, scales, zeroPoints, signed);
    }
}
