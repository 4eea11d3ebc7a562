using System.Reflection;
var asms = new[]{ typeof(Microsoft.ML.MLContext).Assembly, typeof(Microsoft.ML.Trainers.MaximumEntropyModelParameters).Assembly, typeof(Microsoft.ML.Data.MulticlassPredictionTransformer<>).Assembly, typeof(Microsoft.ML.Transforms.ValueMappingEstimator).Assembly};
foreach (var name in new[]{"MaximumEntropyModelParameters","LinearMulticlassModelParameters","MulticlassPredictionTransformer`1","NaiveBayesMulticlassModelParameters","OneVersusAllModelParameters","PairwiseCouplingModelParameters","LinearMulticlassModelParametersBase"})
foreach (var a in asms.Distinct()) foreach (var t in a.GetTypes().Where(t=>t.Name==name)) {
  Console.WriteLine($"== {t.FullName} public={t.IsPublic}");
  foreach (var c in t.GetConstructors(BindingFlags.Public|BindingFlags.NonPublic|BindingFlags.Instance)) Console.WriteLine($"  ctor {(c.IsPublic?"public":"nonpublic")} ({string.Join(", ", c.GetParameters().Select(p=>p.ParameterType.Name+" "+p.Name))})");
  foreach (var m in t.GetMethods(BindingFlags.Public|BindingFlags.Static|BindingFlags.DeclaredOnly)) Console.WriteLine($"  static {m.Name}({string.Join(", ", m.GetParameters().Select(p=>p.ParameterType.Name))})");
}
