"""The skills vocabulary of municipal work, in French: each skill with its synonyms (the words
people use for it in a need) and its related skills (who can help when nobody has it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Skill:
    id: str
    label: str
    domain: str
    synonyms: tuple[str, ...] = ()
    related: tuple[str, ...] = ()


def _skill(id_: str, label: str, domain: str, synonyms: str, related: str = "") -> Skill:
    # synonyms are `;`-separated so that they may hold commas and apostrophes
    return Skill(
        id=id_,
        label=label,
        domain=domain,
        synonyms=tuple(s.strip() for s in synonyms.split(";") if s.strip()),
        related=tuple(r.strip() for r in related.split(",") if r.strip()),
    )


URBANISME = "Urbanisme et aménagement"
MARCHES = "Marchés publics et achats"
VOIRIE = "Voirie, bâtiments et réseaux"
EAU = "Eau et assainissement"
ENERGIE = "Énergie et transition écologique"
NUMERIQUE = "Informatique et cybersécurité"
RH = "Ressources humaines"
FINANCES = "Finances et subventions"
JURIDIQUE = "Juridique et administration générale"
ENVIRONNEMENT = "Environnement"
CULTURE = "Culture, sport et vie associative"
SOCIAL = "Action sociale et santé"
ENFANCE = "Petite enfance, enfance et éducation"
SECURITE = "Sécurité et prévention"
COMMUNICATION = "Communication et participation"
ECONOMIE = "Développement économique et tourisme"

SKILLS: tuple[Skill, ...] = (
    # -- urbanisme et aménagement
    _skill(
        "plu",
        "Plan local d'urbanisme (PLU, PLUi)",
        URBANISME,
        "plan local d'urbanisme; PLU; PLUi; plan local d'urbanisme intercommunal; révision du "
        "PLU; modification du PLU; document d'urbanisme; carte communale; OAP; orientation "
        "d'aménagement et de programmation; règlement d'urbanisme; zonage; PADD",
        "urbanisme, scot, droit-des-sols, evaluation-environnementale, concertation",
    ),
    _skill(
        "urbanisme",
        "Urbanisme",
        URBANISME,
        "urbaniste; planification urbaine; aménagement urbain; projet urbain; étude urbaine; "
        "densification; zéro artificialisation nette; ZAN",
        "plu, droit-des-sols, amenagement, scot, sig",
    ),
    _skill(
        "droit-des-sols",
        "Droit des sols et autorisations d'urbanisme (ADS)",
        URBANISME,
        "ADS; permis de construire; déclaration préalable; certificat d'urbanisme; instruction "
        "des autorisations d'urbanisme; permis d'aménager; instructeur; conformité des travaux; "
        "infractions d'urbanisme",
        "urbanisme, plu",
    ),
    _skill(
        "scot",
        "SCoT et planification territoriale",
        URBANISME,
        "schéma de cohérence territoriale; SCOT; SRADDET; planification territoriale; "
        "aménagement du territoire",
        "plu, urbanisme",
    ),
    _skill(
        "amenagement",
        "Aménagement opérationnel (ZAC, lotissements)",
        URBANISME,
        "ZAC; zone d'aménagement concerté; lotissement; opération d'aménagement; aménageur; "
        "requalification; friche; reconversion de friche; projet d'aménagement",
        "urbanisme, foncier, maitrise-oeuvre",
    ),
    _skill(
        "foncier",
        "Foncier et domaine public",
        URBANISME,
        "maîtrise foncière; acquisition foncière; droit de préemption; DPU; expropriation; "
        "déclaration d'utilité publique; DUP; cession immobilière; domaine public; "
        "domanialité; bail; biens sans maître; stratégie foncière; EPORA",
        "amenagement, juridique",
    ),
    _skill(
        "revitalisation",
        "Revitalisation des centres-bourgs",
        URBANISME,
        "centre-bourg; centre-ville; petites villes de demain; action cœur de ville; "
        "opération de revitalisation de territoire; ORT; vacance commerciale; dévitalisation",
        "urbanisme, habitat, developpement-economique",
    ),
    _skill(
        "habitat",
        "Habitat et logement",
        URBANISME,
        "logement; logement social; OPAH; habitat indigne; insalubrité; péril; arrêté de "
        "péril; programme local de l'habitat; PLH; bailleur social; logements vacants",
        "revitalisation, renovation-energetique, action-sociale",
    ),
    _skill(
        "paysage",
        "Paysage et architecture",
        URBANISME,
        "paysagiste; architecte; architecture; intégration paysagère; site patrimonial "
        "remarquable; architecte des bâtiments de France; ABF; aménagement paysager",
        "urbanisme, patrimoine, espaces-verts",
    ),
    _skill(
        "sig",
        "SIG et cartographie",
        URBANISME,
        "système d'information géographique; SIG; cartographie; QGIS; géomatique; "
        "géomaticien; cadastre; plan cadastral; données géographiques; adressage; base "
        "adresse locale",
        "urbanisme, numerique",
    ),
    # -- marchés publics et achats
    _skill(
        "marches-publics",
        "Marchés publics",
        MARCHES,
        "commande publique; appel d'offres; consultation des entreprises; DCE; dossier de "
        "consultation; code de la commande publique; MAPA; procédure adaptée; analyse des "
        "offres; attribution; CCAP; CCTP; acheteur public; marché public",
        "achats, concessions, juridique, maitrise-oeuvre",
    ),
    _skill(
        "achats",
        "Achats et groupements de commandes",
        MARCHES,
        "acheteur; groupement de commandes; centrale d'achat; politique d'achat; sourcing; "
        "achats responsables; schéma de promotion des achats; UGAP",
        "marches-publics",
    ),
    _skill(
        "concessions",
        "Délégations de service public et concessions",
        MARCHES,
        "DSP; délégation de service public; concession; contrat de concession; affermage; "
        "régie; mode de gestion; délégataire; rapport du délégataire",
        "marches-publics, eau-potable, juridique",
    ),
    # -- voirie, bâtiments et réseaux
    _skill(
        "voirie",
        "Voirie et travaux publics",
        VOIRIE,
        "chaussée; enrobé; travaux de voirie; route; trottoir; aménagement de voirie; VRD; "
        "voiries et réseaux divers; nids-de-poule; signalisation routière; programme de "
        "voirie; travaux publics",
        "mobilite, eclairage-public, ouvrages-art, maitrise-oeuvre",
    ),
    _skill(
        "eclairage-public",
        "Éclairage public",
        VOIRIE,
        "éclairage; candélabre; luminaire; LED; extinction nocturne; pollution lumineuse; "
        "réseau d'éclairage",
        "voirie, energie",
    ),
    _skill(
        "mobilite",
        "Mobilités et déplacements",
        VOIRIE,
        "mobilité; plan de mobilité; piste cyclable; vélo; aménagements cyclables; "
        "stationnement; plan de circulation; zone 30; covoiturage; transport à la demande; "
        "déplacements; sécurité routière",
        "voirie, urbanisme",
    ),
    _skill(
        "ouvrages-art",
        "Ouvrages d'art",
        VOIRIE,
        "pont; passerelle; mur de soutènement; inspection des ponts; programme national ponts; "
        "ouvrage d'art",
        "voirie, maitrise-oeuvre",
    ),
    _skill(
        "maitrise-oeuvre",
        "Conduite d'opérations et maîtrise d'ouvrage",
        VOIRIE,
        "maîtrise d'œuvre; maîtrise d'ouvrage; conduite d'opération; AMO; assistance à maîtrise "
        "d'ouvrage; suivi de chantier; programmation de travaux; programmiste; loi MOP; "
        "réception des travaux; ordonnancement pilotage coordination; OPC",
        "batiment, voirie, marches-publics",
    ),
    _skill(
        "batiment",
        "Bâtiments communaux",
        VOIRIE,
        "bâtiments communaux; patrimoine bâti; maintenance des bâtiments; gros entretien; "
        "travaux de bâtiment; diagnostic du bâtiment; amiante; plomb; toiture; menuiseries; "
        "plan pluriannuel d'entretien",
        "maitrise-oeuvre, renovation-energetique, accessibilite, securite-erp",
    ),
    _skill(
        "accessibilite",
        "Accessibilité",
        VOIRIE,
        "PMR; personnes à mobilité réduite; Ad'AP; agenda d'accessibilité programmée; "
        "handicap; PAVE; plan de mise en accessibilité de la voirie; mise en accessibilité",
        "batiment, voirie, action-sociale",
    ),
    # -- eau et assainissement
    _skill(
        "eau-potable",
        "Eau potable",
        EAU,
        "réseau d'eau; adduction; captage; distribution d'eau; fuites; rendement de réseau; "
        "qualité de l'eau; schéma directeur d'eau potable; eau potable; réservoir; "
        "périmètre de protection; transfert de la compétence eau",
        "assainissement, concessions, gemapi",
    ),
    _skill(
        "assainissement",
        "Assainissement",
        EAU,
        "eaux usées; station d'épuration; STEP; assainissement collectif; assainissement non "
        "collectif; SPANC; réseau d'assainissement; zonage d'assainissement; boues",
        "eau-potable, eaux-pluviales",
    ),
    _skill(
        "eaux-pluviales",
        "Eaux pluviales et ruissellement",
        EAU,
        "pluvial; eaux pluviales; ruissellement; bassin de rétention; gestion des eaux "
        "pluviales; désimperméabilisation; infiltration; noue",
        "assainissement, gemapi, voirie",
    ),
    _skill(
        "gemapi",
        "GEMAPI, rivières et inondations",
        EAU,
        "gestion des milieux aquatiques; prévention des inondations; cours d'eau; rivière; "
        "digue; PPRI; plan de prévention des risques inondation; inondation; crue; "
        "continuité écologique",
        "eaux-pluviales, biodiversite, risques-majeurs",
    ),
    # -- énergie et transition écologique
    _skill(
        "renovation-energetique",
        "Rénovation énergétique des bâtiments",
        ENERGIE,
        "audit énergétique; décret tertiaire; isolation thermique; isolation des combles; "
        "économies d'énergie; performance énergétique; CEP; conseiller en énergie partagé; "
        "DPE; rénovation thermique; rénovation énergétique; OPERAT; sobriété énergétique",
        "energie, batiment, subventions",
    ),
    _skill(
        "energie",
        "Énergie et fluides",
        ENERGIE,
        "achat d'énergie; fluides; consommations énergétiques; électricité; gaz; chauffage; "
        "réseau de chaleur; chaufferie; contrat d'exploitation de chauffage; facture d'énergie",
        "renovation-energetique, energies-renouvelables",
    ),
    _skill(
        "energies-renouvelables",
        "Énergies renouvelables",
        ENERGIE,
        "photovoltaïque; panneaux solaires; centrale solaire; solaire; éolien; méthanisation; "
        "bois énergie; géothermie; autoconsommation; communauté énergétique; chaufferie bois",
        "energie, renovation-energetique",
    ),
    _skill(
        "transition-ecologique",
        "Transition écologique et climat",
        ENERGIE,
        "PCAET; plan climat; bilan carbone; bilan des émissions de gaz à effet de serre; "
        "adaptation au changement climatique; développement durable; agenda 21; îlots de "
        "chaleur; transition écologique",
        "energie, biodiversite, dechets",
    ),
    # -- informatique et cybersécurité
    _skill(
        "informatique",
        "Informatique et systèmes",
        NUMERIQUE,
        "informaticien; administrateur système; administrateur réseau; administration "
        "systèmes et réseaux; parc informatique; poste de travail; serveur; réseau "
        "informatique; support utilisateurs; assistance informatique; messagerie; sauvegarde des "
        "données; téléphonie; migration informatique; Windows; Linux",
        "cybersecurite, numerique",
    ),
    _skill(
        "cybersecurite",
        "Cybersécurité",
        NUMERIQUE,
        "sécurité informatique; sécurité des systèmes d'information; RSSI; cyberattaque; "
        "rançongiciel; ransomware; phishing; hameçonnage; PSSI; politique de sécurité des "
        "systèmes d'information; plan de continuité d'activité; ANSSI; audit de sécurité; "
        "piratage; NIS 2",
        "informatique, rgpd",
    ),
    _skill(
        "rgpd",
        "Protection des données (RGPD)",
        NUMERIQUE,
        "RGPD; DPO; délégué à la protection des données; données personnelles; registre des "
        "traitements; CNIL; AIPD; analyse d'impact; mise en conformité RGPD",
        "cybersecurite, juridique, archives",
    ),
    _skill(
        "numerique",
        "Transformation numérique et démarches en ligne",
        NUMERIQUE,
        "dématérialisation; démarches en ligne; portail citoyen; gestion de la relation "
        "usager; GRU; saisine par voie électronique; SVE; inclusion numérique; conseiller "
        "numérique; open data; données ouvertes; logiciel métier; transformation numérique",
        "informatique, communication, archives",
    ),
    _skill(
        "archives",
        "Archives et gestion documentaire",
        NUMERIQUE,
        "archiviste; archivage; gestion documentaire; gestion électronique des documents; GED; "
        "versement; tri d'archives; élimination d'archives; archivage électronique; "
        "classement des archives",
        "numerique, rgpd",
    ),
    # -- ressources humaines
    _skill(
        "rh",
        "Ressources humaines",
        RH,
        "gestion du personnel; GRH; recrutement; statut de la fonction publique territoriale; "
        "fonction publique territoriale; entretien professionnel; RIFSEEP; régime "
        "indemnitaire; lignes directrices de gestion; temps de travail; 1607 heures; "
        "dialogue social; comité social territorial",
        "paie, formation, sante-travail, management",
    ),
    _skill(
        "paie",
        "Paie et carrières",
        RH,
        "paie; bulletin de salaire; DSN; déclaration sociale nominative; carrières; "
        "avancement de grade; CNRACL; retraite; arrêtés de carrière",
        "rh, finances",
    ),
    _skill(
        "formation",
        "Formation et compétences",
        RH,
        "plan de formation; gestion prévisionnelle des emplois et des compétences; GPEEC; "
        "gestion des compétences; CNFPT; apprentissage; formateur; tutorat",
        "rh",
    ),
    _skill(
        "sante-travail",
        "Prévention et santé au travail",
        RH,
        "document unique; DUERP; risques professionnels; assistant de prévention; conseiller "
        "de prévention; risques psychosociaux; RPS; ergonomie; formation spécialisée en "
        "santé sécurité; accident du travail; reclassement",
        "rh, securite-erp",
    ),
    _skill(
        "management",
        "Management et organisation",
        RH,
        "organigramme; réorganisation; conduite du changement; direction générale; DGS; "
        "directeur général des services; audit organisationnel; projet d'administration; "
        "management d'équipe",
        "rh, controle-gestion",
    ),
    # -- finances et subventions
    _skill(
        "finances",
        "Finances locales et budget",
        FINANCES,
        "budget; comptabilité publique; M57; nomenclature M57; prospective financière; "
        "analyse financière; dette; emprunt; débat d'orientation budgétaire; DOB; rapport "
        "d'orientation budgétaire; compte administratif; compte financier unique; CFU; "
        "trésorerie; plan pluriannuel d'investissement; PPI; préparation budgétaire",
        "subventions, fiscalite, controle-gestion",
    ),
    _skill(
        "subventions",
        "Subventions et recherche de financements",
        FINANCES,
        "subvention; financements; DETR; DSIL; fonds vert; dossier de subvention; demande de "
        "subvention; appel à projets; cofinancement; plan de financement; ingénierie "
        "financière; recherche de financements",
        "finances, fonds-europeens",
    ),
    _skill(
        "fonds-europeens",
        "Fonds européens",
        FINANCES,
        "FEDER; LEADER; FSE; FEADER; programme européen; Interreg; fonds européens; "
        "financements européens",
        "subventions",
    ),
    _skill(
        "fiscalite",
        "Fiscalité locale",
        FINANCES,
        "taxe foncière; taxe d'aménagement; valeurs locatives; CFE; fiscalité locale; taxe "
        "de séjour; taxe sur les logements vacants",
        "finances",
    ),
    _skill(
        "controle-gestion",
        "Contrôle de gestion et évaluation",
        FINANCES,
        "contrôle de gestion; tableau de bord; indicateurs; évaluation des politiques "
        "publiques; coûts complets; audit interne; contrôle interne",
        "finances, management",
    ),
    # -- juridique et administration générale
    _skill(
        "juridique",
        "Conseil juridique",
        JURIDIQUE,
        "juriste; droit public; droit administratif; conseil juridique; sécurisation "
        "juridique; actes administratifs; pouvoirs de police du maire; veille juridique; "
        "responsabilité administrative",
        "contentieux, marches-publics, assemblees",
    ),
    _skill(
        "contentieux",
        "Contentieux et précontentieux",
        JURIDIQUE,
        "contentieux; recours; tribunal administratif; litige; mémoire en défense; "
        "précontentieux; recours gracieux; contentieux de l'urbanisme",
        "juridique",
    ),
    _skill(
        "assemblees",
        "Assemblées et actes",
        JURIDIQUE,
        "conseil municipal; délibération; délibérations; arrêtés du maire; procès-verbal; "
        "registre des délibérations; contrôle de légalité; commissions; règlement intérieur",
        "juridique, secretariat-mairie",
    ),
    _skill(
        "etat-civil",
        "État civil, élections et cimetières",
        JURIDIQUE,
        "état civil; élections; listes électorales; REU; cimetière; funéraire; concessions "
        "funéraires; reprise de concessions; recensement; mariage",
        "assemblees, secretariat-mairie",
    ),
    _skill(
        "secretariat-mairie",
        "Secrétariat de mairie",
        JURIDIQUE,
        "secrétaire de mairie; secrétaire générale de mairie; secrétariat de mairie; "
        "remplacement de secrétaire de mairie; accueil de la mairie; polyvalence",
        "assemblees, finances, etat-civil",
    ),
    _skill(
        "intercommunalite",
        "Intercommunalité et mutualisation",
        JURIDIQUE,
        "EPCI; transfert de compétences; mutualisation; pacte financier et fiscal; CLECT; "
        "commune nouvelle; fusion de communes; schéma de mutualisation",
        "finances, juridique",
    ),
    # -- environnement
    _skill(
        "biodiversite",
        "Biodiversité et espaces naturels",
        ENVIRONNEMENT,
        "biodiversité; écologue; trame verte et bleue; zones humides; Natura 2000; inventaire "
        "faune flore; atlas de la biodiversité communale; espèces exotiques envahissantes; "
        "espace naturel sensible",
        "espaces-verts, gemapi, evaluation-environnementale",
    ),
    _skill(
        "espaces-verts",
        "Espaces verts et patrimoine arboré",
        ENVIRONNEMENT,
        "espaces verts; zéro phyto; gestion différenciée; arbres; patrimoine arboré; "
        "élagage; arboriste; plantations; fleurissement; végétalisation; cour oasis; "
        "plan de gestion des arbres",
        "biodiversite, paysage",
    ),
    _skill(
        "dechets",
        "Déchets et propreté",
        ENVIRONNEMENT,
        "déchets; collecte des déchets; tri sélectif; déchetterie; biodéchets; compostage; "
        "économie circulaire; propreté urbaine; dépôts sauvages; redevance incitative",
        "transition-ecologique",
    ),
    _skill(
        "evaluation-environnementale",
        "Évaluation environnementale",
        ENVIRONNEMENT,
        "étude d'impact; évaluation environnementale; autorité environnementale; ICPE; "
        "dossier loi sur l'eau; séquence éviter réduire compenser; ERC; étude faune flore",
        "biodiversite, plu",
    ),
    _skill(
        "risques-majeurs",
        "Risques majeurs et gestion de crise",
        ENVIRONNEMENT,
        "plan communal de sauvegarde; PCS; DICRIM; risques naturels; gestion de crise; "
        "cellule de crise; plan intercommunal de sauvegarde; exercice de crise; risques "
        "majeurs",
        "gemapi, police-municipale",
    ),
    # -- culture, sport et vie associative
    _skill(
        "culture",
        "Action culturelle",
        CULTURE,
        "programmation culturelle; saison culturelle; spectacle vivant; médiation culturelle; "
        "politique culturelle; éducation artistique et culturelle; EAC; festival; "
        "résidence d'artistes",
        "evenementiel, lecture-publique, patrimoine",
    ),
    _skill(
        "lecture-publique",
        "Lecture publique et médiathèques",
        CULTURE,
        "médiathèque; bibliothèque; bibliothécaire; lecture publique; SIGB; réseau de "
        "médiathèques; fonds documentaire",
        "culture, numerique",
    ),
    _skill(
        "patrimoine",
        "Patrimoine culturel et monuments",
        CULTURE,
        "patrimoine; monument historique; musée; inventaire du patrimoine; conservation; "
        "restauration du patrimoine; ville d'art et d'histoire; église; petit patrimoine",
        "culture, paysage",
    ),
    _skill(
        "evenementiel",
        "Événementiel et manifestations",
        CULTURE,
        "événement; manifestation; fête; organisation d'événements; logistique "
        "événementielle; grand rassemblement; régie technique; sonorisation; fête de la "
        "musique; marché de Noël",
        "culture, securite-erp, communication",
    ),
    _skill(
        "sport",
        "Sport et équipements sportifs",
        CULTURE,
        "politique sportive; équipements sportifs; gymnase; stade; piscine; clubs sportifs; "
        "éducateur sportif; ETAPS; city stade",
        "vie-associative, batiment",
    ),
    _skill(
        "vie-associative",
        "Vie associative",
        CULTURE,
        "associations; subventions aux associations; bénévolat; maison des associations; "
        "forum des associations; convention d'objectifs",
        "sport, culture",
    ),
    # -- action sociale et santé
    _skill(
        "action-sociale",
        "Action sociale (CCAS)",
        SOCIAL,
        "CCAS; centre communal d'action sociale; aide sociale; analyse des besoins sociaux; "
        "ABS; précarité; aides facultatives; travailleur social; accompagnement social; "
        "domiciliation; épicerie sociale",
        "seniors, insertion, habitat, sante",
    ),
    _skill(
        "seniors",
        "Personnes âgées et autonomie",
        SOCIAL,
        "personnes âgées; seniors; EHPAD; résidence autonomie; maintien à domicile; SAAD; "
        "aide à domicile; portage de repas; grand âge; dépendance; isolement des personnes "
        "âgées; plan canicule",
        "action-sociale, sante",
    ),
    _skill(
        "insertion",
        "Insertion et emploi",
        SOCIAL,
        "insertion professionnelle; chantier d'insertion; clause sociale; clauses "
        "d'insertion; emploi; RSA; mission locale; France Travail; retour à l'emploi",
        "action-sociale, marches-publics",
    ),
    _skill(
        "politique-ville",
        "Politique de la ville",
        SOCIAL,
        "quartiers prioritaires; QPV; contrat de ville; cohésion sociale; renouvellement "
        "urbain; NPNRU; gestion urbaine de proximité",
        "action-sociale, amenagement, securite-publique",
    ),
    _skill(
        "sante",
        "Santé publique",
        SOCIAL,
        "contrat local de santé; CLS; désert médical; maison de santé; centre de santé; "
        "prévention santé; médecins; santé publique; installation de médecins",
        "action-sociale, seniors",
    ),
    # -- petite enfance, enfance et éducation
    _skill(
        "petite-enfance",
        "Petite enfance",
        ENFANCE,
        "crèche; multi-accueil; EAJE; établissement d'accueil du jeune enfant; relais petite "
        "enfance; RPE; assistantes maternelles; PSU; prestation de service unique; "
        "convention territoriale globale; CTG; micro-crèche; petite enfance",
        "enfance-jeunesse, action-sociale",
    ),
    _skill(
        "enfance-jeunesse",
        "Enfance, jeunesse et périscolaire",
        ENFANCE,
        "périscolaire; accueil de loisirs; centre de loisirs; ALSH; PEDT; projet éducatif "
        "territorial; animation; jeunesse; conseil municipal des jeunes; BAFA; plan "
        "mercredi; animateur",
        "petite-enfance, education",
    ),
    _skill(
        "education",
        "Affaires scolaires",
        ENFANCE,
        "école; écoles; carte scolaire; inscriptions scolaires; ATSEM; bâtiments scolaires; "
        "transport scolaire; affaires scolaires; groupe scolaire",
        "enfance-jeunesse, restauration-collective",
    ),
    _skill(
        "restauration-collective",
        "Restauration collective",
        ENFANCE,
        "restauration scolaire; cantine; cuisine centrale; loi EGalim; EGalim; menus; "
        "circuits courts; projet alimentaire territorial; PAT; HACCP; repas",
        "education, achats",
    ),
    # -- sécurité et prévention
    _skill(
        "police-municipale",
        "Police municipale",
        SECURITE,
        "policier municipal; police municipale; ASVP; fourrière; arrêtés de police; "
        "stationnement gênant; brigade",
        "securite-publique, videoprotection",
    ),
    _skill(
        "securite-publique",
        "Prévention de la délinquance et tranquillité publique",
        SECURITE,
        "CLSPD; prévention de la délinquance; tranquillité publique; médiation sociale; "
        "incivilités; rappel à l'ordre",
        "police-municipale, videoprotection, politique-ville",
    ),
    _skill(
        "videoprotection",
        "Vidéoprotection",
        SECURITE,
        "vidéosurveillance; caméras; vidéoprotection; CSU; centre de supervision urbain",
        "securite-publique, informatique",
    ),
    _skill(
        "securite-erp",
        "Sécurité incendie et ERP",
        SECURITE,
        "ERP; commission de sécurité; sécurité incendie; établissement recevant du public; "
        "registre de sécurité; SSI; système de sécurité incendie; dossier de sécurité; "
        "défense extérieure contre l'incendie; DECI; poteaux incendie",
        "batiment, evenementiel, accessibilite",
    ),
    # -- communication et participation
    _skill(
        "communication",
        "Communication publique",
        COMMUNICATION,
        "chargé de communication; magazine municipal; bulletin municipal; journal municipal; "
        "plan de communication; relations presse; identité visuelle; charte graphique; "
        "communication de crise; communication",
        "numerique, concertation, reseaux-sociaux, graphisme",
    ),
    _skill(
        "reseaux-sociaux",
        "Réseaux sociaux et web",
        COMMUNICATION,
        "réseaux sociaux; Facebook; Instagram; community manager; site web; site internet; "
        "refonte du site internet; newsletter; application mobile",
        "communication, numerique",
    ),
    _skill(
        "concertation",
        "Concertation et participation citoyenne",
        COMMUNICATION,
        "concertation; participation citoyenne; démocratie participative; budget "
        "participatif; réunion publique; enquête publique; conseil de quartier; "
        "consultation des habitants; atelier participatif",
        "communication, plu",
    ),
    _skill(
        "graphisme",
        "PAO et graphisme",
        COMMUNICATION,
        "graphiste; PAO; mise en page; InDesign; affiche; supports de communication; illustration",
        "communication",
    ),
    # -- développement économique et tourisme
    _skill(
        "developpement-economique",
        "Développement économique et commerce",
        ECONOMIE,
        "commerce; commerce de proximité; développement économique; zone d'activités; ZAE; "
        "implantation d'entreprises; manager de centre-ville; marchés forains; droits de "
        "place; artisanat",
        "revitalisation, tourisme",
    ),
    _skill(
        "tourisme",
        "Tourisme",
        ECONOMIE,
        "office de tourisme; randonnée; sentiers; attractivité touristique; camping; "
        "itinérance; hébergement touristique; promotion touristique",
        "developpement-economique, culture, patrimoine",
    ),
    _skill(
        "agriculture",
        "Agriculture et forêt",
        ECONOMIE,
        "agriculture; agriculteurs; foncier agricole; forêt communale; ONF; bois communal; "
        "installation agricole; friches agricoles",
        "restauration-collective, foncier",
    ),
)
