using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Training;

/// <summary>Small synthetic data and tiny nets: 1×8×8 noisy images whose class is the brightest quadrant.</summary>
internal static class TestData
{
    public static readonly long[] InputShape = { 1, 8, 8 };

    public sealed class ImageRow
    {
        [VectorType(64)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public uint Label { get; set; }
    }

    public static ImageRow[] QuadrantRows(int rows, int seed)
    {
        var random = new Random(seed);
        var result = new ImageRow[rows];
        for (var r = 0; r < rows; r++)
        {
            var label = (uint)random.Next(4);
            var pixels = new float[64];
            for (var i = 0; i < 64; i++)
            {
                var (y, x) = (i / 8, i % 8);
                var quadrant = (y >= 4 ? 2 : 0) + (x >= 4 ? 1 : 0);
                pixels[i] = (float)(random.NextDouble() - 0.5) + (quadrant == label ? 1.5f : 0f);
            }
            result[r] = new ImageRow { Features = pixels, Label = label };
        }
        return result;
    }

    public static IDataView Quadrants(MLContext ml, int rows, int seed = 1) => ml.Data.LoadFromEnumerable(QuadrantRows(rows, seed));

    /// <summary>Conv(1,4,3,p1)-BN-ReLU-MaxPool2-Flatten-Linear(64,4): names 0 … 5. Unseeded: for a ModelFactory (the
    /// runner seeds TorchSharp before calling it) or where the weights do not matter.</summary>
    public static nn.Module<Tensor, Tensor> TinyCnn() => nn.Sequential(
        nn.Conv2d(1, 4, 3, padding: 1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 4));

    /// <summary><see cref="TinyCnn"/> with fixed initial weights: seeds TorchSharp, then builds it. For a model handed
    /// over built (Model = …, Qat(model, …)), which exists before the runner seeds, so that its weights, and the
    /// results, do not depend on which tests ran before in the process.</summary>
    public static nn.Module<Tensor, Tensor> SeededTinyCnn(int seed)
    {
        manual_seed(seed);
        return TinyCnn();
    }

    /// <summary>Conv-BN-Hardtanh-MaxPool-Flatten-Linear-Hardtanh-Linear, for BNN: names 0 … 7.</summary>
    public static nn.Module<Tensor, Tensor> TinyHardtanhNet() => nn.Sequential(
        nn.Conv2d(1, 4, 3, padding: 1), nn.BatchNorm2d(4), nn.Hardtanh(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64, 16), nn.Hardtanh(), nn.Linear(16, 4));

    /// <summary>Every parameter and buffer of <paramref name="module"/> (BatchNorm's running_mean, running_var and
    /// num_batches_tracked included) by state_dict name, as exact float64 copies of their values.</summary>
    public static (string Name, double[] Values)[] State(nn.Module module) => module.state_dict()
        .Select(kv => (kv.Key, kv.Value.detach().cpu().to_type(ScalarType.Float64).data<double>().ToArray())).ToArray();

    /// <summary>Asserts two <see cref="State"/> snapshots hold the same tensors with the same values, bit for bit.</summary>
    public static void AssertSameState((string Name, double[] Values)[] expected, (string Name, double[] Values)[] actual,
        string message)
    {
        CollectionAssert.AreEqual(expected.Select(e => e.Name).ToArray(), actual.Select(a => a.Name).ToArray(), $"{message}: names");
        for (var i = 0; i < expected.Length; i++)
            CollectionAssert.AreEqual(expected[i].Values, actual[i].Values, $"{message}: '{expected[i].Name}'");
    }

    public static float[] Values(Tensor t) => t.detach().cpu().to_type(ScalarType.Float32).data<float>().ToArray();
}
