using Microsoft.ML;
using MLNetQuant.Configuration;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;

namespace MLNetQuant.Samples.ModelBuilderStyle;

/// <summary>Trains and saves the model, the way Model Builder's generated <c>ModelBuilder.CreateModel</c> does —
/// with MLNetQuant's QAT estimator as the trainer, so the saved model is int8.</summary>
public static class ModelBuilder
{
    /// <summary>Builds the pipeline, trains it on <paramref name="trainRows"/> rows and saves it to
    /// <paramref name="modelPath"/>; returns the training-side accuracy on <paramref name="testRows"/> rows.</summary>
    public static double TrainModel(string modelPath, int trainRows, int testRows, int epochs)
    {
        var ml = new MLContext(seed: 1);
        IDataView trainingData = ml.Data.LoadFromEnumerable(Load(train: true, trainRows));

        var pipeline = BuildTrainingPipeline(ml, epochs);
        var model = pipeline.Fit(trainingData);
        ml.Model.Save(model, trainingData.Schema, modelPath);

        var test = ml.Data.LoadFromEnumerable(Load(train: false, testRows));
        var scored = ml.Data.CreateEnumerable<Scored>(model.Transform(test), reuseRowObject: false);
        var labels = ml.Data.CreateEnumerable<LabelKey>(model.Transform(test), reuseRowObject: false);
        return scored.Zip(labels).Count(p => Array.IndexOf(p.First.Score, p.First.Score.Max()) == p.Second.Label - 1) / (double)testRows;
    }

    /// <summary>Label text → key (sorted, so classes are in alphabetical order), pixels → normalised Features, then
    /// quantization-aware training of the reference CNN from scratch.</summary>
    public static IEstimator<ITransformer> BuildTrainingPipeline(MLContext ml, int epochs) =>
        ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(ml.Transforms.NormalizeMeanVariance("Features", "Pixels", fixZero: false))
            .Append(ml.Quantization().Qat(new QatOptions
            {
                ModelFactory = FashionNets.Cnn,
                InputShape = new long[] { 1, 28, 28 },
                Epochs = epochs,
                LearningRate = 0.01,
                Config = { new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = 8, OpTypes = { "Conv2d", "Linear" } } },
            }));

    internal static IEnumerable<ModelInput> Load(bool train, int rows)
    {
        var (images, labels, _) = FashionMnist.Load(train, rows);
        return images.Select((pixels, i) => new ModelInput { Pixels = pixels, Label = FashionMnist.ClassNames[labels[i]] });
    }

    private sealed class Scored
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    private sealed class LabelKey
    {
        public uint Label { get; set; }
    }
}
