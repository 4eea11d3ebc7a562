using System.Globalization;

namespace MLNetQuant.Benchmarks;

/// <summary>Command-line options of the benchmark program.</summary>
internal sealed record BenchmarkOptions
{
    public int TrainRows { get; init; } = int.MaxValue;
    public int TestRows { get; init; } = int.MaxValue;
    public int FloatEpochs { get; init; } = 3;
    public int BnnEpochs { get; init; } = 20;
    public int Threads { get; init; } = 2;
    public int TimingRounds { get; init; } = 3;
    public int TimingRows { get; init; } = 6_400;
    public string Output { get; init; } = "Benchmarks/results";
    public int Seed { get; init; } = 1;
    public HashSet<string> Only { get; init; } = new(StringComparer.OrdinalIgnoreCase);

    public const string Usage =
        "usage: Benchmarks [--train N] [--test N] [--float-epochs N] [--bnn-epochs N] [--threads N] [--timing-rounds N]\n" +
        "                  [--timing-rows N] [--seed N] [--out DIR] [--only observer,naive,qat,lsq,dorefa,bnn,timing,engine,onnx,fashion-onnx,resnet,onnx-qat,minilm,dynamic,static,smoothquant,int4,gptq,arctic,accuracy-aware,zoo-accuracy-aware]\n" +
        "Defaults: full Fashion-MNIST, 3 float epochs, 20 BNN epochs (rate ×0.1 after the 13th), 2 threads, results in Benchmarks/results.";

    public static BenchmarkOptions? Parse(string[] args)
    {
        var o = new BenchmarkOptions();
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value");
                int Int() { var name = args[i]; var v = int.Parse(Next(), CultureInfo.InvariantCulture); return v > 0 ? v : throw new FormatException($"{name} must be positive"); }
                o = args[i] switch
                {
                    "--train" => o with { TrainRows = Int() },
                    "--test" => o with { TestRows = Int() },
                    "--float-epochs" => o with { FloatEpochs = Int() },
                    "--bnn-epochs" => o with { BnnEpochs = Int() },
                    "--threads" => o with { Threads = Int() },
                    "--timing-rounds" => o with { TimingRounds = Int() },
                    "--timing-rows" => o with { TimingRows = Int() },
                    "--seed" => o with { Seed = Int() },
                    "--out" => o with { Output = Next() },
                    "--only" => o with { Only = new HashSet<string>(Next().Split(','), StringComparer.OrdinalIgnoreCase) },
                    _ => throw new FormatException($"unknown option {args[i]}"),
                };
            }
            return o;
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine($"{e.Message}\n{Usage}");
            return null;
        }
    }

    public bool Runs(string part) => Only.Count == 0 || Only.Contains(part);
}
