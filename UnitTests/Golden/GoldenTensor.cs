using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Golden;

/// <summary>A tensor from a golden JSON file: {"shape": [...], "dtype": "...", "data": [...]}.</summary>
internal sealed record GoldenTensor(long[] Shape, string Dtype, double[] Data)
{
    public static GoldenTensor Parse(JsonElement element)
    {
        var shape = element.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var dtype = element.GetProperty("dtype").GetString()!;
        var data = element.GetProperty("data").EnumerateArray()
            .Select(e => e.ValueKind switch
            {
                JsonValueKind.True => 1.0,
                JsonValueKind.False => 0.0,
                _ => e.GetDouble(),
            })
            .ToArray();
        return new GoldenTensor(shape, dtype, data);
    }

    /// <summary>Float32 values, rounded from the stored doubles exactly as the golden README prescribes.</summary>
    public float[] Floats => Data.Select(d => (float)d).ToArray();

    public long[] Longs => Data.Select(d => (long)d).ToArray();

    public Tensor ToFloatTensor(bool requiresGrad = false) =>
        tensor(Floats, Shape, dtype: ScalarType.Float32, requires_grad: requiresGrad);
}
